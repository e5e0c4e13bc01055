"""Endings: cancellations (any province) with their inter-province settlement entries, MVNO exit
takeovers (resumable: counters and a cursor), and merged subscribers (``merged_into``).

Revision ID: 0007_endings
Revises: 0006_lines
Create Date: 2026-11-29 13:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_endings"
down_revision: str | None = "0006_lines"
branch_labels = None
depends_on = None

MSISDN = sa.String(length=11, collation="C")


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column(
            "merged_into",
            sa.String(40),
            sa.ForeignKey("subscribers.id", name="fk_subscribers_merged_into_subscribers"),
        ),
    )
    op.create_index(
        "ix_subscribers_merged_into",
        "subscribers",
        ["merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )

    op.create_table(
        "cancellations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "line_id",
            sa.String(40),
            sa.ForeignKey("lines.id", name="fk_cancellations_line_id_lines"),
            nullable=False,
        ),
        sa.Column("msisdn", MSISDN, nullable=False),
        sa.Column("mvno_id", sa.String(40), nullable=False),
        sa.Column("subscriber_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("home_province", sa.String(2), nullable=False),
        sa.Column("requested_province", sa.String(2), nullable=False),
        sa.Column("cross_province", sa.Boolean(), nullable=False),
        sa.Column("refund_fen", sa.BigInteger(), nullable=False),
        sa.Column("arrears_settled_fen", sa.BigInteger(), nullable=False),
        sa.Column("penalty_accepted", sa.Boolean(), nullable=False),
        sa.Column("identity_method", sa.String(32), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_key_id", sa.String(40), nullable=False),
        sa.CheckConstraint("status IN ('completed')", name="ck_cancellations_status"),
        sa.CheckConstraint(
            "cross_province = (home_province <> requested_province)", name="ck_cancellations_cross_province"
        ),
        sa.CheckConstraint(
            "refund_fen >= 0 AND arrears_settled_fen >= 0", name="ck_cancellations_money_non_negative"
        ),
    )
    # A line ends once: at most one cancellation per line.
    op.create_index("uq_cancellations_line_id", "cancellations", ["line_id"], unique=True)
    op.create_index("ix_cancellations_mvno_id", "cancellations", ["mvno_id", "id"])
    # A takeover repoints a subscriber's cancellations.
    op.create_index("ix_cancellations_subscriber_id", "cancellations", ["subscriber_id"])

    op.create_table(
        "settlement_entries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "cancellation_id",
            sa.String(40),
            sa.ForeignKey("cancellations.id", name="fk_settlement_entries_cancellation_id_cancellations"),
            nullable=False,
        ),
        sa.Column("from_province", sa.String(2), nullable=False),
        sa.Column("to_province", sa.String(2), nullable=False),
        sa.Column("refund_fen", sa.BigInteger(), nullable=False),
        sa.Column("arrears_fen", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("from_province <> to_province", name="ck_settlement_entries_cross_province"),
        sa.CheckConstraint(
            "refund_fen >= 0 AND arrears_fen >= 0", name="ck_settlement_entries_money_non_negative"
        ),
    )
    op.create_index(
        "uq_settlement_entries_cancellation_id", "settlement_entries", ["cancellation_id"], unique=True
    )
    op.create_index("ix_settlement_entries_occurred_at", "settlement_entries", ["occurred_at"])

    op.create_table(
        "takeovers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "from_mvno_id",
            sa.String(40),
            sa.ForeignKey("mvnos.id", name="fk_takeovers_from_mvno_id_mvnos"),
            nullable=False,
        ),
        sa.Column(
            "to_mvno_id",
            sa.String(40),
            sa.ForeignKey("mvnos.id", name="fk_takeovers_to_mvno_id_mvnos"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("cursor", sa.String(40), nullable=False, server_default=sa.text("''")),
        sa.Column("blocks_total", sa.Integer(), nullable=False),
        sa.Column("blocks_moved", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("subscribers_total", sa.Integer(), nullable=False),
        sa.Column("subscribers_moved", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("subscribers_merged", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("lines_total", sa.Integer(), nullable=False),
        sa.Column("lines_moved", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("reservations_moved", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("batches", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("created_by_key_id", sa.String(40), nullable=False),
        sa.CheckConstraint("status IN ('running', 'completed')", name="ck_takeovers_status"),
        sa.CheckConstraint(
            "phase IN ('blocks', 'subscribers', 'reservations', 'finish', 'done')", name="ck_takeovers_phase"
        ),
        sa.CheckConstraint("from_mvno_id <> to_mvno_id", name="ck_takeovers_distinct_mvnos"),
        sa.CheckConstraint(
            "(status = 'completed') = (completed_at IS NOT NULL)", name="ck_takeovers_completed_at"
        ),
    )
    # An MVNO exits once.
    op.create_index("uq_takeovers_from_mvno_id", "takeovers", ["from_mvno_id"], unique=True)
    op.create_index(
        "ix_takeovers_running", "takeovers", ["id"], postgresql_where=sa.text("status = 'running'")
    )


def downgrade() -> None:
    op.drop_table("takeovers")
    op.drop_table("settlement_entries")
    op.drop_table("cancellations")
    op.drop_index("ix_subscribers_merged_into", table_name="subscribers")
    op.drop_column("subscribers", "merged_into")
