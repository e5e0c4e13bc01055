"""Real-name retention: a subscriber's identity can be purged (ciphertext erased, blind index removed).

Revision ID: 0010_retention
Revises: 0008_webhooks
Create Date: 2026-11-29 15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010_retention"
down_revision: str | None = "0008_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    for column in ("name_ciphertext", "id_number_ciphertext", "id_blind_index"):
        op.alter_column("subscribers", column, nullable=True)
    op.create_check_constraint(
        "ck_subscribers_purged_identity",
        "subscribers",
        "(purged_at IS NULL) = (id_blind_index IS NOT NULL AND name_ciphertext IS NOT NULL "
        "AND id_number_ciphertext IS NOT NULL)",
    )
    # The sweeper's candidates: no live line, not purged, untouched for a while (``updated_at`` moves
    # when the last line ends, so it bounds the end of service from below).
    op.create_index(
        "ix_subscribers_purge_candidates",
        "subscribers",
        ["updated_at"],
        postgresql_where=sa.text("live_lines = 0 AND purged_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_subscribers_purge_candidates", table_name="subscribers")
    op.drop_constraint("ck_subscribers_purged_identity", "subscribers", type_="check")
    for column in ("name_ciphertext", "id_number_ciphertext", "id_blind_index"):
        op.alter_column("subscribers", column, nullable=False)
    op.drop_column("subscribers", "purged_at")
