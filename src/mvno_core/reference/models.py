from __future__ import annotations

from sqlalchemy import CheckConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class SegmentRow(Base):
    """MVNO number segments; seeded by migration (a reference table when sharded)."""

    __tablename__ = "segments"
    __table_args__ = (
        CheckConstraint("host IN ('CMCC', 'CUCC', 'CTCC')", name="host"),
        # Blocks reference (segment, host) so a block's host always equals its segment's host.
        UniqueConstraint("code", "host"),
    )

    code: Mapped[str] = mapped_column(String(4), primary_key=True)
    host: Mapped[str] = mapped_column(String(4))


class ProvinceRow(Base):
    """GB/T 2260 provinces; seeded by migration."""

    __tablename__ = "provinces"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
