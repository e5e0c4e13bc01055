"""Takeovers (承接): one exiting MVNO's whole book moving to a receiver, in committed batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Takeover(Base):
    """Progress is data: ``phase`` and ``cursor`` say where the next batch starts, the counters what
    moved, so a worker that dies mid-way is replaced by one that continues from the last commit."""

    __tablename__ = "takeovers"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed')", name="status"),
        CheckConstraint("phase IN ('blocks', 'subscribers', 'reservations', 'finish', 'done')", name="phase"),
        CheckConstraint("from_mvno_id <> to_mvno_id", name="distinct_mvnos"),
        CheckConstraint("(status = 'completed') = (completed_at IS NOT NULL)", name="completed_at"),
        # An MVNO exits once.
        Index("uq_takeovers_from_mvno_id", "from_mvno_id", unique=True),
        Index("ix_takeovers_running", "id", postgresql_where=text("status = 'running'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    from_mvno_id: Mapped[str] = mapped_column(String(40), ForeignKey("mvnos.id"))
    to_mvno_id: Mapped[str] = mapped_column(String(40), ForeignKey("mvnos.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    cursor: Mapped[str] = mapped_column(String(40), server_default=text("''"))
    blocks_total: Mapped[int] = mapped_column(Integer)
    blocks_moved: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    subscribers_total: Mapped[int] = mapped_column(Integer)
    subscribers_moved: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    subscribers_merged: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    lines_total: Mapped[int] = mapped_column(Integer)
    lines_moved: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reservations_moved: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    batches: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[str] = mapped_column(String(40))
