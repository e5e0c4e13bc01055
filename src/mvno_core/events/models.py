from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Event(Base):
    """Outbox of domain events, written in the same transaction as the change it reports.

    ``position`` is NULL when written; the feed sequencer (``events/sequencer.py``) gives committed rows
    gap-free positions in the order they became visible. The feed serves positioned rows only, so its
    cursor is data that travels with the rows (dump and restore, a new primary).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_mvno_feed", "mvno_id", "position"),
        Index("ix_events_unpositioned", "seq", postgresql_where=text("position IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    mvno_id: Mapped[str | None] = mapped_column(String(40))
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Insertion order; only breaks ties among rows that become visible to the same sequencer run.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), unique=True)
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
