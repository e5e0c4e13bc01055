"""Every table, imported in one place so Alembic sees the whole metadata."""

from mvno_core.audit.models import AuditCheckpoint, AuditEntry
from mvno_core.auth.models import ApiKey
from mvno_core.blocks.models import Block
from mvno_core.cancellations.models import Cancellation, SettlementEntry
from mvno_core.events.models import Event
from mvno_core.kernel.db import Base
from mvno_core.kernel.idempotency_models import IdempotencyRecord
from mvno_core.lines.models import (
    CardSlot,
    Dispute,
    EndUser,
    Hold,
    Line,
    LineProfile,
    ReverificationRequest,
)
from mvno_core.mvnos.models import Mvno
from mvno_core.numbers.models import Number
from mvno_core.recycling.models import RecyclingBatch, RecyclingDelivery, RecyclingPlatform
from mvno_core.reference.models import ProvinceRow, SegmentRow
from mvno_core.reservations.models import Reservation
from mvno_core.subscribers.models import Subscriber, Verification
from mvno_core.takeovers.models import Takeover
from mvno_core.webhooks.models import WebhookDelivery, WebhookEndpoint

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuditCheckpoint",
    "AuditEntry",
    "Block",
    "Cancellation",
    "CardSlot",
    "Dispute",
    "EndUser",
    "Event",
    "Hold",
    "IdempotencyRecord",
    "Line",
    "LineProfile",
    "Mvno",
    "Number",
    "ProvinceRow",
    "RecyclingBatch",
    "RecyclingDelivery",
    "RecyclingPlatform",
    "Reservation",
    "ReverificationRequest",
    "SegmentRow",
    "SettlementEntry",
    "Subscriber",
    "Takeover",
    "Verification",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
