"""Request bodies and read models of recycling platforms, reissue batches and the CAMARA check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mvno_core.webhooks.schemas import WebhookUrl

PlatformName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class PlatformCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlatformName
    # http(s) only; private, loopback and link-local hosts are refused (the webhooks' SSRF rule).
    url: WebhookUrl


class PlatformRead(BaseModel):
    id: str
    name: str
    url: str
    status: str  # active | inactive
    created_at: datetime
    deactivated_at: datetime | None


class PlatformCreated(PlatformRead):
    secret: str  # shown in this response only (not stored for idempotent replay either)


class BatchNumber(BaseModel):
    msisdn: str
    last_cancelled_at: datetime | None


class DeliveryRead(BaseModel):
    platform_id: str
    platform_name: str
    # pending | acknowledged (a 2xx answer) | abandoned (platform deactivated) | expired (deadline passed)
    status: str
    attempts: int
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    acknowledged_at: datetime | None


class BatchRead(BaseModel):
    id: str
    status: str  # pending | released
    created_at: datetime
    deadline_at: datetime
    released_at: datetime | None
    # acknowledged: every platform acknowledged before the deadline; deadline: released at the deadline.
    release_reason: str | None
    number_count: int
    numbers: list[BatchNumber]
    deliveries: list[DeliveryRead]


class BatchSummary(BaseModel):
    id: str
    status: str
    created_at: datetime
    deadline_at: datetime
    released_at: datetime | None
    release_reason: str | None
    number_count: int


# E.164 with +86 (CAMARA's form) or the bare 11-digit national number.
PhoneNumber = Annotated[
    str,
    StringConstraints(pattern=r"^(\+86)?1[0-9]{10}$", max_length=14),
    Field(examples=["+8616500001234"]),
]
CalendarDate = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", max_length=10)]


class RecyclingCheck(BaseModel):
    """CAMARA Number Recycling ``POST /check``: has the subscriber of ``phoneNumber`` changed after
    ``specifiedDate`` (a day in China time, UTC+8)?"""

    model_config = ConfigDict(extra="forbid")

    phoneNumber: PhoneNumber  # CAMARA names its fields in camelCase
    specifiedDate: CalendarDate = Field(examples=["2026-01-01"])


class RecyclingCheckResult(BaseModel):
    phoneNumChanged: bool


def platform_to_read(row: Any) -> PlatformRead:
    return PlatformRead(
        id=row.id,
        name=row.name,
        url=row.url,
        status=row.status,
        created_at=row.created_at,
        deactivated_at=row.deactivated_at,
    )


def batch_summary(row: Any) -> BatchSummary:
    return BatchSummary(
        id=row.id,
        status=row.status,
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        released_at=row.released_at,
        release_reason=row.release_reason,
        number_count=row.number_count,
    )


def batch_to_read(row: Any, deliveries: list[Any]) -> BatchRead:
    return BatchRead(
        **batch_summary(row).model_dump(),
        numbers=[BatchNumber(**number) for number in row.numbers],
        deliveries=[
            DeliveryRead(
                platform_id=d.platform_id,
                platform_name=d.platform_name,
                status=d.status,
                attempts=d.attempts,
                last_attempt_at=d.last_attempt_at,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                acknowledged_at=d.acknowledged_at,
            )
            for d in deliveries
        ],
    )
