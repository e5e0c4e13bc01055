from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mvno_core.events.types import EVENT_TYPES

_TYPE_PATTERN = "^(" + "|".join(sorted(name.replace(".", r"\.") for name in EVENT_TYPES)) + ")$"
EventTypeName = Annotated[str, StringConstraints(pattern=_TYPE_PATTERN, max_length=64)]
WebhookUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2000)]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    # Only these event types are sent; omitted: every type.
    types: Annotated[list[EventTypeName], Field(min_length=1, max_length=64)] | None = None
    # Operator only: the MVNO whose events the endpoint receives (omitted: every MVNO's). A partner's
    # endpoint always receives its own MVNO's events.
    mvno_id: Annotated[str, StringConstraints(max_length=40)] | None = None


class WebhookEndpointRead(BaseModel):
    id: str
    mvno_id: str | None
    url: str
    types: list[str] | None
    status: str
    disabled_at: datetime | None
    disabled_reason: str | None
    # Set while deliveries fail: when the current run of failures began (disabled after a day of it).
    failing_since: datetime | None
    next_attempt_at: datetime | None
    # After a rotation: until when the previous secret still signs deliveries too.
    previous_secret_valid_until: datetime | None
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str  # shown in this response only, never again (not stored for idempotent replay either)


class WebhookDeliveryRead(BaseModel):
    id: int
    event_id: str
    event_type: str
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    succeeded: bool
    duration_ms: int


def to_read(row: Any, now: datetime) -> WebhookEndpointRead:
    until = row.previous_secret_until
    return WebhookEndpointRead(
        id=row.id,
        mvno_id=row.mvno_id,
        url=row.url,
        types=list(row.types) if row.types is not None else None,
        status=row.status,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        next_attempt_at=row.next_attempt_at,
        previous_secret_valid_until=until if until is not None and until > now else None,
        created_at=row.created_at,
    )


def delivery_to_read(row: Any) -> WebhookDeliveryRead:
    return WebhookDeliveryRead(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        attempt=row.attempt,
        attempted_at=row.attempted_at,
        status_code=row.status_code,
        error=row.error,
        succeeded=row.succeeded,
        duration_ms=row.duration_ms,
    )
