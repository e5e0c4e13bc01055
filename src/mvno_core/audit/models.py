from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class AuditEntry(Base):
    """Append-only audit log (a trigger refuses UPDATE of content, DELETE and TRUNCATE).

    A writing transaction inserts its row *unchained* (chain columns NULL) so no row is locked by every
    write; the sequencer later links committed rows: ``chain_pos``, ``prev_hash``, ``chain_hash``.
    ``content_hash`` is computed when the row is written, so tampering before linking is detected too.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_subject", "subject_kind", "subject_id", "id"),
        Index("ix_audit_entries_mvno_id", "mvno_id", "id"),
        Index("ix_audit_entries_unchained", "id", postgresql_where=text("chain_pos IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_key_id: Mapped[str] = mapped_column(String(40))
    actor_role: Mapped[str] = mapped_column(String(32))
    actor_mvno_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(Text)
    mvno_id: Mapped[str | None] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    content_hash: Mapped[str] = mapped_column(String(64))
    chain_pos: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    chain_hash: Mapped[str | None] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed ``(length, head hash, time)`` of the chain. The key is outside the database, and the
    latest checkpoint is also kept outside (``audit/checkpoints.py``), so a truncated tail, a wiped table
    or a re-linked chain cannot pass verification."""

    __tablename__ = "audit_checkpoints"

    length: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(Text)
