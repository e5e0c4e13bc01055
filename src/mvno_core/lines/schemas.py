"""Line, hold, account, re-verification and dispute bodies and read models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import RowMapping
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumError

from mvno_core.lines.lifecycle import REASON_TEXTS, DisputeOutcome, HoldReason, LineStatus, reason_text
from mvno_core.reference.types import Fen

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Ident = Annotated[str, StringConstraints(max_length=40)]


def _valid_iccid(value: str) -> str:
    """ITU-T E.118: 19–20 digits, 89 (telecom) + 86 (China), Luhn check digit (python-stdnum)."""
    if not value.startswith("8986"):
        raise ValueError("an ICCID issued in China starts with 8986")
    try:
        luhn.validate(value)
    except StdnumError as exc:
        raise ValueError("the ICCID's Luhn check digit is wrong") from exc
    return value


Iccid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{19,20}$"),
    AfterValidator(_valid_iccid),
    Field(description="19–20 digits starting 8986, with a valid Luhn check digit (ITU-T E.118)."),
]
Imsi = Annotated[
    str,
    StringConstraints(pattern=r"^460[0-9]{12}$"),
    Field(description="15 digits: MCC 460 + the MNC of the number's host + 10 digits."),
]


class LineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriber_id: Ident
    msisdn: Annotated[str, StringConstraints(max_length=32)]
    reservation_id: Ident | None = Field(
        default=None, description="Optional: the MVNO's live reservation of this number (it is consumed)."
    )
    iccid: Iccid
    imsi: Imsi
    plan_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    contract_end: date | None = Field(default=None, description="Required for premium numbers.")


class AccountRead(BaseModel):
    balance_fen: int
    arrears_fen: int
    overdue_since: date | None
    updated_at: datetime | None


class LineRead(BaseModel):
    id: str
    msisdn: str
    subscriber_id: str
    mvno_id: str
    status: LineStatus
    iccid: str
    imsi: str
    plan_code: str | None
    contract_end: date | None
    activated_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    open_holds: list[HoldReason] = Field(description="Why the line is suspended (empty when active).")
    account: AccountRead


def line_to_read(row: RowMapping, open_holds: list[str]) -> LineRead:
    return LineRead(
        id=row["id"],
        msisdn=row["msisdn"],
        subscriber_id=row["subscriber_id"],
        mvno_id=row["mvno_id"],
        status=LineStatus(row["status"]),
        iccid=row["iccid"],
        imsi=row["imsi"],
        plan_code=row["plan_code"],
        contract_end=row["contract_end"],
        activated_at=row["activated_at"],
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        open_holds=[HoldReason(reason) for reason in sorted(open_holds)],
        account=AccountRead(
            balance_fen=row["balance_fen"],
            arrears_fen=row["arrears_fen"],
            overdue_since=row["overdue_since"],
            updated_at=row["account_updated_at"],
        ),
    )


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: HoldReason
    note: Note | None = None


class HoldLift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class ReasonTexts(BaseModel):
    zh: str
    en: str


class HoldRead(BaseModel):
    id: str
    line_id: str
    reason: HoldReason
    reason_text: str = Field(description="What the subscriber is told: Chinese / English.")
    reason_texts: ReasonTexts
    note: str | None
    placed_by_role: str
    placed_at: datetime
    lifted_at: datetime | None
    lifted_by_role: str | None
    lift_note: str | None


def hold_to_read(row: RowMapping | dict[str, Any]) -> HoldRead:
    reason = HoldReason(row["reason"])
    texts = REASON_TEXTS[reason]
    return HoldRead(
        id=row["id"],
        line_id=row["line_id"],
        reason=reason,
        reason_text=reason_text(reason),
        reason_texts=ReasonTexts(zh=texts.zh, en=texts.en),
        note=row["note"],
        placed_by_role=row["placed_by_role"],
        placed_at=row["placed_at"],
        lifted_at=row["lifted_at"],
        lifted_by_role=row["lifted_by_role"],
        lift_note=row["lift_note"],
    )


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    balance_fen: Fen
    arrears_fen: Fen
    overdue_since: date | None = Field(
        default=None, description="First day a bill went unpaid; with arrears, 30 days later an arrears hold."
    )


class ReverificationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Note


class ReverificationRead(BaseModel):
    id: str
    line_id: str
    subscriber_id: str
    reason: str
    status: str
    created_at: datetime
    deadline_at: datetime
    resolved_at: datetime | None


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class DisputeResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: DisputeOutcome


class DisputeRead(BaseModel):
    id: str
    line_id: str
    msisdn: str
    status: str
    hold_id: str
    note: str | None
    opened_at: datetime
    resolved_at: datetime | None


class PortingReason(BaseModel):
    code: str = Field(
        description="real_name_unverified | line_not_normal | arrears_outstanding | contract_active | "
        "ported_recently | segment_not_portable"
    )
    detail: str
    amount_fen: int | None = None
    contract_end: date | None = None


class PortingEligibility(BaseModel):
    line_id: str
    eligible: bool
    reasons: list[PortingReason]
