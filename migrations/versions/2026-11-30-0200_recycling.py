"""Safe reissue of recycled numbers (二次号码焕新): recycling platforms, reissue batches and their
per-platform deliveries; ``numbers.reissue_batch_id`` (the batch a number waits in, still ``quarantined``)
and ``numbers.reissued_at`` (when a previously used number became available again).

Revision ID: 0013_recycling
Revises: 0012_profiles
Create Date: 2026-11-30 01:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_recycling"
down_revision: str | None = "0012_profiles"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recycling_platforms",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        # Sealed with the PII key ring (the deliverer signs with it), like webhook secrets.
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by_key_id", sa.String(40), nullable=False),
        sa.Column("deactivated_at", TS),
        sa.CheckConstraint("status IN ('active', 'inactive')", name="ck_recycling_platforms_status"),
        sa.CheckConstraint(
            "(status = 'inactive') = (deactivated_at IS NOT NULL)",
            name="ck_recycling_platforms_deactivated_at",
        ),
    )
    # One active platform per name (a second registration of the same platform is a 409 conflict).
    op.create_index(
        "uq_recycling_platforms_active_name",
        "recycling_platforms",
        ["name"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "recycling_batches",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        # [{msisdn, last_cancelled_at}], as pushed to the platforms (bounded by recycling_batch_size).
        sa.Column("numbers", postgresql.JSONB(), nullable=False),
        sa.Column("number_count", sa.Integer(), nullable=False),
        sa.Column("deadline_at", TS, nullable=False),
        sa.Column("released_at", TS),
        sa.Column("release_reason", sa.String(16)),
        sa.CheckConstraint("status IN ('pending', 'released')", name="ck_recycling_batches_status"),
        sa.CheckConstraint(
            "release_reason IS NULL OR release_reason IN ('acknowledged', 'deadline')",
            name="ck_recycling_batches_release_reason",
        ),
        sa.CheckConstraint(
            "(status = 'released') = (released_at IS NOT NULL AND release_reason IS NOT NULL)",
            name="ck_recycling_batches_released",
        ),
    )
    op.create_index(
        "ix_recycling_batches_pending",
        "recycling_batches",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "recycling_deliveries",
        sa.Column(
            "batch_id",
            sa.String(40),
            sa.ForeignKey("recycling_batches.id", name="fk_recycling_deliveries_batch_id_recycling_batches"),
            primary_key=True,
        ),
        sa.Column(
            "platform_id",
            sa.String(40),
            sa.ForeignKey(
                "recycling_platforms.id", name="fk_recycling_deliveries_platform_id_recycling_platforms"
            ),
            primary_key=True,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", TS),
        sa.Column("leased_until", TS),
        sa.Column("last_attempt_at", TS),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("acknowledged_at", TS),
        sa.Column("closed_at", TS),
        sa.CheckConstraint(
            "status IN ('pending', 'acknowledged', 'abandoned', 'expired')",
            name="ck_recycling_deliveries_status",
        ),
        sa.CheckConstraint(
            "(status = 'acknowledged') = (acknowledged_at IS NOT NULL)",
            name="ck_recycling_deliveries_acknowledged_at",
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (closed_at IS NULL)", name="ck_recycling_deliveries_closed_at"
        ),
    )
    op.create_index(
        "ix_recycling_deliveries_due",
        "recycling_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_recycling_deliveries_platform_id", "recycling_deliveries", ["platform_id"])
    op.add_column("numbers", sa.Column("reissue_batch_id", sa.String(40)))
    op.add_column("numbers", sa.Column("reissued_at", TS))
    op.create_index(
        "ix_numbers_reissue_batch_id",
        "numbers",
        ["reissue_batch_id"],
        postgresql_where=sa.text("reissue_batch_id IS NOT NULL"),
    )
    # A number waits in a reissue batch only while it is quarantined.
    op.create_check_constraint(
        "ck_numbers_reissue_batch_quarantined",
        "numbers",
        "reissue_batch_id IS NULL OR status = 'quarantined'",
    )


def downgrade() -> None:
    op.drop_constraint("ck_numbers_reissue_batch_quarantined", "numbers", type_="check")
    op.drop_index("ix_numbers_reissue_batch_id", table_name="numbers")
    op.drop_column("numbers", "reissued_at")
    op.drop_column("numbers", "reissue_batch_id")
    op.drop_index("ix_recycling_deliveries_platform_id", table_name="recycling_deliveries")
    op.drop_index("ix_recycling_deliveries_due", table_name="recycling_deliveries")
    op.drop_table("recycling_deliveries")
    op.drop_index("ix_recycling_batches_pending", table_name="recycling_batches")
    op.drop_table("recycling_batches")
    op.drop_index("uq_recycling_platforms_active_name", table_name="recycling_platforms")
    op.drop_table("recycling_platforms")
