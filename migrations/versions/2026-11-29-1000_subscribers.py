"""Subscribers and their real-name verifications.

Names and ID numbers are stored only encrypted (AES-256-GCM, keys outside the database) with masked
copies for display; ``id_blind_index`` (HMAC-SHA-256 of the normalised ID) serves every look-up. One
subscriber per (MVNO, ID) is a unique index; ``live_lines`` is the counter the 5-card cap will update.

Revision ID: 0004_subscribers
Revises: 0003_number_lifecycle
Create Date: 2026-11-29 10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_subscribers"
down_revision: str | None = "0003_number_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("mvno_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("id_type", sa.String(length=32), nullable=False),
        sa.Column("name_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("id_blind_index", sa.LargeBinary(), nullable=False),
        sa.Column("name_masked", sa.Text(), nullable=False),
        sa.Column("id_number_masked", sa.Text(), nullable=False),
        sa.Column("real_name_status", sa.String(length=16), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("live_lines", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_key_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint("kind IN ('individual', 'enterprise')", name=op.f("ck_subscribers_kind")),
        sa.CheckConstraint(
            "id_type IN ('resident_id', 'passport', 'hk_macau_permit', 'taiwan_permit', "
            "'foreign_permanent_resident', 'business_license')",
            name=op.f("ck_subscribers_id_type"),
        ),
        sa.CheckConstraint(
            "real_name_status IN ('unverified', 'verified')", name=op.f("ck_subscribers_real_name_status")
        ),
        sa.CheckConstraint(
            "(real_name_status = 'verified') = (verified_at IS NOT NULL)",
            name=op.f("ck_subscribers_verified_at"),
        ),
        sa.CheckConstraint("live_lines >= 0", name=op.f("ck_subscribers_live_lines_non_negative")),
        sa.CheckConstraint(
            "octet_length(id_blind_index) = 32", name=op.f("ck_subscribers_blind_index_length")
        ),
        sa.ForeignKeyConstraint(["mvno_id"], ["mvnos.id"], name=op.f("fk_subscribers_mvno_id_mvnos")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
    )
    op.create_index(
        "uq_subscribers_mvno_id_id_type_id_blind_index",
        "subscribers",
        ["mvno_id", "id_type", "id_blind_index"],
        unique=True,
    )
    op.create_index("ix_subscribers_id_blind_index", "subscribers", ["id_blind_index"], unique=False)
    op.create_table(
        "subscriber_verifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("subscriber_id", sa.String(length=40), nullable=False),
        sa.Column("mvno_id", sa.String(length=40), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("evidence_ref", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_key_id", sa.String(length=40), nullable=False),
        sa.Column("status_after", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "method IN ('in_person_face_match', 'online_liveness', 'enterprise_registration')",
            name=op.f("ck_subscriber_verifications_method"),
        ),
        sa.CheckConstraint("result IN ('passed', 'failed')", name=op.f("ck_subscriber_verifications_result")),
        sa.CheckConstraint(
            "status_after IN ('unverified', 'verified')",
            name=op.f("ck_subscriber_verifications_status_after"),
        ),
        sa.CheckConstraint(
            "score IS NULL OR (score >= 0 AND score <= 100)",
            name=op.f("ck_subscriber_verifications_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_verifications_subscriber_id_subscribers"),
        ),
        sa.ForeignKeyConstraint(
            ["mvno_id"], ["mvnos.id"], name=op.f("fk_subscriber_verifications_mvno_id_mvnos")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriber_verifications")),
    )
    op.create_index(
        "ix_subscriber_verifications_subscriber_id_id",
        "subscriber_verifications",
        ["subscriber_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_subscriber_verifications_subscriber_id_id", table_name="subscriber_verifications")
    op.drop_table("subscriber_verifications")
    op.drop_index("ix_subscribers_id_blind_index", table_name="subscribers")
    op.drop_index("uq_subscribers_mvno_id_id_type_id_blind_index", table_name="subscribers")
    op.drop_table("subscribers")
