from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base

# The table a platform key's foreign key names must be in the metadata wherever keys are written (the
# CLI imports no recycling code otherwise, and the flush would fail to resolve the reference).
from mvno_core.recycling import models as _recycling_models  # noqa: F401


class ApiKey(Base):
    """An API key. Only the SHA-256 of the secret is stored; the secret is shown once at creation."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('operator', 'partner', 'regulator', 'recycling_platform')", name="role"),
        # A partner key is bound to exactly one MVNO; other roles to none.
        CheckConstraint("(role = 'partner') = (mvno_id IS NOT NULL)", name="partner_has_mvno"),
        # A recycling platform's key is bound to exactly one platform; other roles to none.
        CheckConstraint(
            "(role = 'recycling_platform') = (recycling_platform_id IS NOT NULL)",
            name="platform_has_platform",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # First characters of the key, so a human can tell keys apart in lists without the secret.
    hint: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(32))
    mvno_id: Mapped[str | None] = mapped_column(ForeignKey("mvnos.id"), index=True)
    recycling_platform_id: Mapped[str | None] = mapped_column(
        ForeignKey("recycling_platforms.id"), index=True
    )
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
