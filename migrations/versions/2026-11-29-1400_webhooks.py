"""Webhook endpoints (secret sealed with the PII keys, a feed cursor per endpoint) and delivery attempts.

Revision ID: 0008_webhooks
Revises: 0007_endings
Create Date: 2026-11-29 14:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_webhooks"
down_revision: str | None = "0007_endings"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(40), primary_key=True),
        # NULL: an operator endpoint that receives every MVNO's events.
        sa.Column(
            "mvno_id",
            sa.String(40),
            sa.ForeignKey("mvnos.id", name="fk_webhook_endpoints_mvno_id_mvnos"),
        ),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("types", sa.ARRAY(sa.String(64))),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret_sealed", sa.LargeBinary()),
        sa.Column("previous_secret_until", TS),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_at", TS),
        sa.Column("disabled_reason", sa.Text()),
        # The feed position of the last event handled (delivered, or skipped by the filters).
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("failing_since", TS),
        sa.Column("failed_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", TS),
        sa.Column("leased_until", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by_key_id", sa.String(40), nullable=False),
        sa.CheckConstraint("status IN ('enabled', 'disabled')", name="ck_webhook_endpoints_status"),
        sa.CheckConstraint(
            "(status = 'disabled') = (disabled_at IS NOT NULL)", name="ck_webhook_endpoints_disabled_at"
        ),
    )
    op.create_index("ix_webhook_endpoints_mvno_id", "webhook_endpoints", ["mvno_id", "id"])
    op.create_index(
        "ix_webhook_endpoints_due",
        "webhook_endpoints",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'enabled'"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.String(40),
            sa.ForeignKey(
                "webhook_endpoints.id",
                name="fk_webhook_deliveries_endpoint_id_webhook_endpoints",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
