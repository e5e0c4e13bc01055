"""Subscribers and their verification history.

Names and ID numbers are stored only as AES-256-GCM ciphertext (``pii.py``) plus their masked forms
(what every response shows, so reads never need a key); look-ups go through ``id_blind_index``, an
HMAC of the normalised ``(id_type, id_number)``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mvno_core.kernel.db import Base


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        CheckConstraint("kind IN ('individual', 'enterprise')", name="kind"),
        CheckConstraint(
            "id_type IN ('resident_id', 'passport', 'hk_macau_permit', 'taiwan_permit', "
            "'foreign_permanent_resident', 'business_license')",
            name="id_type",
        ),
        CheckConstraint("real_name_status IN ('unverified', 'verified')", name="real_name_status"),
        CheckConstraint("(real_name_status = 'verified') = (verified_at IS NOT NULL)", name="verified_at"),
        # The 5-card cap will be a conditional update of this counter (one row, no count over lines).
        CheckConstraint("live_lines >= 0", name="live_lines_non_negative"),
        CheckConstraint("octet_length(id_blind_index) = 32", name="blind_index_length"),
        # One subscriber per person per MVNO.
        Index(
            "uq_subscribers_mvno_id_id_type_id_blind_index",
            "mvno_id",
            "id_type",
            "id_blind_index",
            unique=True,
        ),
        # 一证通查 across MVNOs: the blind index already covers the id type (it is hashed in).
        Index("ix_subscribers_id_blind_index", "id_blind_index"),
        CheckConstraint(
            "(purged_at IS NULL) = (id_blind_index IS NOT NULL AND name_ciphertext IS NOT NULL "
            "AND id_number_ciphertext IS NOT NULL)",
            name="purged_identity",
        ),
        Index(
            "ix_subscribers_purge_candidates",
            "updated_at",
            postgresql_where=text("live_lines = 0 AND purged_at IS NULL"),
        ),
        Index("ix_subscribers_merged_into", "merged_into", postgresql_where=text("merged_into IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    mvno_id: Mapped[str] = mapped_column(String(40), ForeignKey("mvnos.id"))
    kind: Mapped[str] = mapped_column(String(16))
    id_type: Mapped[str] = mapped_column(String(32))
    # NULL once the identity is purged (retention: service period + 2 years), with the blind index.
    name_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_blind_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    name_masked: Mapped[str] = mapped_column(Text)
    id_number_masked: Mapped[str] = mapped_column(Text)
    real_name_status: Mapped[str] = mapped_column(String(16))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    live_lines: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_key_id: Mapped[str] = mapped_column(String(40))
    # A takeover merged this record into the receiver's record of the same person; the id still
    # resolves, to that record.
    merged_into: Mapped[str | None] = mapped_column(String(40), ForeignKey("subscribers.id"))


class Verification(Base):
    __tablename__ = "subscriber_verifications"
    __table_args__ = (
        CheckConstraint(
            "method IN ('in_person_face_match', 'online_liveness', 'enterprise_registration')",
            name="method",
        ),
        CheckConstraint("result IN ('passed', 'failed')", name="result"),
        CheckConstraint("status_after IN ('unverified', 'verified')", name="status_after"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 100)", name="score_range"),
        # The history of one subscriber, in order (ids are time-ordered ULIDs).
        Index("ix_subscriber_verifications_subscriber_id_id", "subscriber_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subscriber_id: Mapped[str] = mapped_column(String(40), ForeignKey("subscribers.id"))
    mvno_id: Mapped[str] = mapped_column(String(40), ForeignKey("mvnos.id"))
    method: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(64))
    evidence_ref: Mapped[str | None] = mapped_column(Text)
    # The subscriber's real-name status right after this verification (the history shows the flip).
    status_after: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_by_key_id: Mapped[str] = mapped_column(String(40))
