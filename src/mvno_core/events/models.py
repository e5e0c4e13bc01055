from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base

# The writing transaction's id. The feed orders by (txid, seq) and serves only rows whose transaction is
# older than every transaction still running, so a late commit can never appear behind a served cursor.
CURRENT_TXID = text("(pg_current_xact_id()::text)::bigint")


class Event(Base):
    """Outbox of domain events, written in the same transaction as the change it reports."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_feed", "txid", "seq"),
        Index("ix_events_mvno_feed", "mvno_id", "txid", "seq"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    mvno_id: Mapped[str | None] = mapped_column(String(40))
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    txid: Mapped[int] = mapped_column(BigInteger, server_default=CURRENT_TXID)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), unique=True)
