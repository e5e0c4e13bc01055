from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Mvno(Base):
    __tablename__ = "mvnos"
    __table_args__ = (
        CheckConstraint("code ~ '^[a-z0-9-]{2,32}$'", name="code_slug"),
        CheckConstraint("status IN ('active', 'restricted', 'exiting', 'terminated')", name="status"),
        CheckConstraint(
            "cardinality(hosts) >= 1 AND hosts <@ ARRAY['CMCC', 'CUCC', 'CTCC']::varchar[]",
            name="hosts",
        ),
        CheckConstraint("cardinality(licensed_provinces) >= 1", name="licensed_provinces"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    legal_name: Mapped[str] = mapped_column(Text)
    license_no: Mapped[str] = mapped_column(Text)
    hosts: Mapped[list[str]] = mapped_column(ARRAY(String(4)))
    licensed_provinces: Mapped[list[str]] = mapped_column(ARRAY(String(2)))
    status: Mapped[str] = mapped_column(String(16))
    # Why the MVNO is restricted (regulator-ordered rectification), shown to the operator.
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
