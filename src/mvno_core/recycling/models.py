"""Recycling platforms, reissue batches and per-platform deliveries (migration ``0013_recycling``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class RecyclingPlatform(Base):
    """An app platform (WeChat, Alipay, a bank…) that must unbind accounts from a number before the
    number is reissued. Registered by the operator; its signing secret is sealed like a webhook's."""

    __tablename__ = "recycling_platforms"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'inactive')", name="status"),
        CheckConstraint("(status = 'inactive') = (deactivated_at IS NOT NULL)", name="deactivated_at"),
        Index(
            "uq_recycling_platforms_active_name",
            "name",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecyclingBatch(Base):
    """Numbers whose quarantine ended, pushed together to every active platform; released to
    ``available`` once every platform acknowledged (``acknowledged``) or at ``deadline_at`` (``deadline``)."""

    __tablename__ = "recycling_batches"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'released')", name="status"),
        CheckConstraint(
            "release_reason IS NULL OR release_reason IN ('acknowledged', 'deadline')", name="release_reason"
        ),
        CheckConstraint(
            "(status = 'released') = (released_at IS NOT NULL AND release_reason IS NOT NULL)",
            name="released",
        ),
        Index("ix_recycling_batches_pending", "created_at", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    numbers: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    number_count: Mapped[int] = mapped_column(Integer)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    release_reason: Mapped[str | None] = mapped_column(String(16))


class RecyclingDelivery(Base):
    """One batch to one platform: attempts, the last answer, and how it ended (``acknowledged`` by a 2xx;
    ``abandoned`` when the platform was deactivated; ``expired`` when the batch was released at its
    deadline without it)."""

    __tablename__ = "recycling_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'acknowledged', 'abandoned', 'expired')", name="status"),
        CheckConstraint("(status = 'acknowledged') = (acknowledged_at IS NOT NULL)", name="acknowledged_at"),
        CheckConstraint("(status = 'pending') = (closed_at IS NULL)", name="closed_at"),
        Index("ix_recycling_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_recycling_deliveries_platform_id", "platform_id"),
    )

    batch_id: Mapped[str] = mapped_column(String(40), ForeignKey("recycling_batches.id"), primary_key=True)
    platform_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("recycling_platforms.id"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
