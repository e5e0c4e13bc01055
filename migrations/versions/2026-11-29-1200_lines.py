"""Lines: activation, holds as a stack, re-verification requests, disputes.

One live line per number, and ICCID / IMSI unique among live lines, are partial unique indexes. Every
child row carries its line's ``msisdn`` (numbers and lines can later be distributed by it).

Revision ID: 0006_lines
Revises: 0005_ledger
Create Date: 2026-11-29 12:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_lines"
down_revision: str | None = "0005_ledger"
branch_labels = None
depends_on = None

MSISDN = sa.String(length=11, collation="C")
LIVE = sa.text("status <> 'cancelled'")


def upgrade() -> None:
    op.create_table(
        "lines",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "msisdn", MSISDN, sa.ForeignKey("numbers.msisdn", name="fk_lines_msisdn_numbers"), nullable=False
        ),
        sa.Column(
            "subscriber_id",
            sa.String(40),
            sa.ForeignKey("subscribers.id", name="fk_lines_subscriber_id_subscribers"),
            nullable=False,
        ),
        sa.Column(
            "mvno_id", sa.String(40), sa.ForeignKey("mvnos.id", name="fk_lines_mvno_id_mvnos"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("iccid", sa.String(20), nullable=False),
        sa.Column("imsi", sa.String(15), nullable=False),
        sa.Column("plan_code", sa.String(64)),
        sa.Column("contract_end", sa.Date()),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.String(32)),
        sa.Column("balance_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("arrears_fen", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("overdue_since", sa.Date()),
        sa.Column("account_updated_at", sa.DateTime(timezone=True)),
        sa.Column("created_by_key_id", sa.String(40), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended', 'cancelled')", name="ck_lines_status"),
        sa.CheckConstraint("(status = 'cancelled') = (ended_at IS NOT NULL)", name="ck_lines_ended_at"),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('cancelled', 'fraudulent', 'arrears_termination')",
            name="ck_lines_end_reason",
        ),
        sa.CheckConstraint("iccid ~ '^8986[0-9]{15,16}$'", name="ck_lines_iccid_format"),
        sa.CheckConstraint("imsi ~ '^460[0-9]{12}$'", name="ck_lines_imsi_format"),
        sa.CheckConstraint("balance_fen >= 0 AND arrears_fen >= 0", name="ck_lines_money_non_negative"),
    )
    op.create_index("uq_lines_live_msisdn", "lines", ["msisdn"], unique=True, postgresql_where=LIVE)
    op.create_index("uq_lines_live_iccid", "lines", ["iccid"], unique=True, postgresql_where=LIVE)
    op.create_index("uq_lines_live_imsi", "lines", ["imsi"], unique=True, postgresql_where=LIVE)
    op.create_index("ix_lines_subscriber_id", "lines", ["subscriber_id", "id"])
    op.create_index("ix_lines_mvno_id", "lines", ["mvno_id", "id"])
    op.create_index(
        "ix_lines_overdue_since", "lines", ["overdue_since"], postgresql_where=sa.text("arrears_fen > 0")
    )

    op.create_table(
        "line_holds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "line_id",
            sa.String(40),
            sa.ForeignKey("lines.id", name="fk_line_holds_line_id_lines"),
            nullable=False,
        ),
        sa.Column("msisdn", MSISDN, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by_key_id", sa.String(40), nullable=False),
        sa.Column("placed_by_role", sa.String(16), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True)),
        sa.Column("lifted_by_key_id", sa.String(40)),
        sa.Column("lifted_by_role", sa.String(16)),
        sa.Column("lift_note", sa.Text()),
        sa.CheckConstraint(
            "reason IN ('arrears', 'user_request', 'loss_report', 'risk_control', 'reverification', "
            "'regulatory', 'judicial')",
            name="ck_line_holds_reason",
        ),
        sa.CheckConstraint(
            "lifted_at IS NULL OR lifted_at >= placed_at", name="ck_line_holds_lifted_after_placed"
        ),
    )
    op.create_index(
        "uq_line_holds_open_reason",
        "line_holds",
        ["line_id", "reason"],
        unique=True,
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_index("ix_line_holds_line_id", "line_holds", ["line_id", "placed_at"])
    op.create_index(
        "ix_line_holds_open_arrears",
        "line_holds",
        ["placed_at"],
        postgresql_where=sa.text("lifted_at IS NULL AND reason = 'arrears'"),
    )

    op.create_table(
        "reverification_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "line_id",
            sa.String(40),
            sa.ForeignKey("lines.id", name="fk_reverification_requests_line_id_lines"),
            nullable=False,
        ),
        sa.Column("msisdn", MSISDN, nullable=False),
        sa.Column(
            "subscriber_id",
            sa.String(40),
            sa.ForeignKey("subscribers.id", name="fk_reverification_requests_subscriber_id_subscribers"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('pending', 'satisfied', 'overdue')", name="ck_reverification_requests_status"
        ),
    )
    op.create_index(
        "ix_reverification_requests_due",
        "reverification_requests",
        ["deadline_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_reverification_requests_subscriber_id", "reverification_requests", ["subscriber_id", "status"]
    )
    op.create_index(
        "ix_reverification_requests_line_id", "reverification_requests", ["line_id", "created_at"]
    )

    op.create_table(
        "disputes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "line_id",
            sa.String(40),
            sa.ForeignKey("lines.id", name="fk_disputes_line_id_lines"),
            nullable=False,
        ),
        sa.Column("msisdn", MSISDN, nullable=False),
        sa.Column("mvno_id", sa.String(40), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hold_id", sa.String(40), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by_key_id", sa.String(40), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by_key_id", sa.String(40)),
        sa.CheckConstraint("status IN ('open', 'owner_confirmed', 'fraudulent')", name="ck_disputes_status"),
    )
    op.create_index(
        "uq_disputes_open_line_id",
        "disputes",
        ["line_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_disputes_line_id", "disputes", ["line_id", "opened_at"])


def downgrade() -> None:
    op.drop_table("disputes")
    op.drop_table("reverification_requests")
    op.drop_table("line_holds")
    op.drop_table("lines")
