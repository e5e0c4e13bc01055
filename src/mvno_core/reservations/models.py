from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Reservation(Base):
    """A hold on one number for a while. The number row says which reservation holds it now; an
    ``active`` reservation past ``expires_at`` is expired (the sweeper writes that down later)."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'released', 'expired', 'consumed')", name="status"),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        Index("ix_reservations_mvno_id_id", "mvno_id", "id"),
        Index(
            "ix_reservations_active_expires_at",
            "expires_at",
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    msisdn: Mapped[str] = mapped_column(ForeignKey("numbers.msisdn"), index=True)
    mvno_id: Mapped[str] = mapped_column(ForeignKey("mvnos.id"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[str] = mapped_column(String(40))
