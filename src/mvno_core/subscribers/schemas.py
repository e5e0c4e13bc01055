from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mvno_core.subscribers.idcheck import DESCRIPTIONS, PATTERNS, IdType
from mvno_core.subscribers.lifecycle import (
    RealNameStatus,
    SubscriberKind,
    VerificationMethod,
    VerificationResult,
)

_ID_NUMBER_DOC = (
    "Checked per `id_type` (422 `validation_error` at `[body, id_number]` otherwise): "
    + "; ".join(f"`{id_type}`: {text} (`{PATTERNS[id_type]}`)" for id_type, text in DESCRIPTIONS.items())
    + ". Spaces and hyphens are ignored, letters compared in upper case. Never returned: responses carry "
    "`id_number_masked`."
)

IdNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    Field(description=_ID_NUMBER_DOC),
]
PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(description="Full name as on the document (2–100 characters). Stored encrypted; never returned."),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscriberCreate(StrictModel):
    mvno_id: str | None = Field(
        default=None, max_length=40, description="Required for the operator; implied for a partner."
    )
    kind: SubscriberKind
    name: PersonName
    id_type: IdType = Field(description="`business_license` for enterprises, a personal document otherwise.")
    id_number: IdNumber


class IdentityQuery(StrictModel):
    id_type: IdType
    id_number: IdNumber


class SubscriberRead(BaseModel):
    id: str
    mvno_id: str
    kind: SubscriberKind
    name_masked: str = Field(description="First character only, e.g. `张*`.")
    id_type: IdType
    id_number_masked: str = Field(description="e.g. `110***********123X`.")
    real_name_status: RealNameStatus
    verified_at: datetime | None
    live_lines: int = Field(
        description="Active or suspended lines of this subscriber, every profile together (each "
        "profile's cap class has its own card cap: GET /v1/line-profiles)."
    )
    created_at: datetime
    purged_at: datetime | None = Field(
        default=None,
        description="When the identity was erased (retention: service period + 2 years); masks remain.",
    )


class SubscriberList(BaseModel):
    items: list[SubscriberRead]
    next_cursor: str | None = Field(default=None, description="Always null: at most one per MVNO.")


class VerificationCreate(StrictModel):
    method: VerificationMethod = Field(
        description="`enterprise_registration` only for enterprise subscribers."
    )
    result: VerificationResult
    score: float | None = Field(
        default=None, ge=0, le=100, description="Match score 0–100, if the method gives one."
    )
    channel: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"),
    ] = Field(description="Where the check ran, e.g. `store:BJ-0042`, `app`, `web`.")
    evidence_ref: (
        Annotated[
            str,
            StringConstraints(
                strip_whitespace=True, min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]+$"
            ),
        ]
        | None
    ) = Field(default=None, description="Reference to the evidence kept elsewhere (no images here).")


class VerificationRead(BaseModel):
    id: str
    subscriber_id: str
    method: VerificationMethod
    result: VerificationResult
    score: float | None
    channel: str
    evidence_ref: str | None
    recorded_at: datetime
    real_name_status: RealNameStatus = Field(description="The subscriber's status after this verification.")


class MvnoCount(BaseModel):
    mvno_id: str
    mvno_name: str
    count: int = Field(description="Live (active or suspended) lines under this ID at this MVNO.")


class LookupLine(BaseModel):
    line_id: str
    msisdn_masked: str
    mvno_name: str
    status: str
    activated_at: datetime


class IdentityLookupRead(BaseModel):
    total: int
    by_mvno: list[MvnoCount] = Field(description="Every MVNO in scope where this ID is a subscriber.")
    lines: list[LookupLine] = Field(description="The lines themselves (filled once lines exist).")


def verification_read(row: Any) -> VerificationRead:
    return VerificationRead(
        id=row["id"],
        subscriber_id=row["subscriber_id"],
        method=row["method"],
        result=row["result"],
        score=row["score"],
        channel=row["channel"],
        evidence_ref=row["evidence_ref"],
        recorded_at=row["recorded_at"],
        real_name_status=row["status_after"],
    )
