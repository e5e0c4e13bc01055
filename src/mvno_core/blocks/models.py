from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Block(Base):
    """A 7-digit H-code block of 10,000 numbers, homed in one province, held by one MVNO.

    Blocks never overlap: every block is exactly one 7-digit prefix (CHECKs on format and size) and the
    prefix is UNIQUE; numbers reference their block *by prefix*, so a number outside any block, or in the
    wrong block, cannot exist. Ownership lives here only, so a takeover moves block rows, not numbers.
    """

    __tablename__ = "blocks"
    __table_args__ = (
        CheckConstraint("prefix ~ '^1[0-9]{6}$'", name="prefix_format"),
        CheckConstraint("starts_with(prefix, segment)", name="prefix_in_segment"),
        CheckConstraint("size = 10000", name="size"),
        CheckConstraint("status IN ('active', 'returned')", name="status"),
        ForeignKeyConstraint(
            ["segment", "host"], ["segments.code", "segments.host"], name="fk_blocks_segment_host"
        ),
        Index("ix_blocks_mvno_id_prefix", "mvno_id", "prefix"),
        Index("ix_blocks_segment_province", "segment", "province"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(7, collation="C"), unique=True)
    segment: Mapped[str] = mapped_column(String(4))
    host: Mapped[str] = mapped_column(String(4))
    province: Mapped[str] = mapped_column(ForeignKey("provinces.code"))
    city: Mapped[str | None] = mapped_column(Text)
    mvno_id: Mapped[str] = mapped_column(ForeignKey("mvnos.id"))
    status: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    allocated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
