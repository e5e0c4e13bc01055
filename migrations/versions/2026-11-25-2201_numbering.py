"""Numbering: H-code blocks, numbers, reservations.

Blocks never overlap (one UNIQUE 7-digit prefix each; numbers reference their block by prefix).
pg_trgm serves infix number searches (*520*).

Revision ID: 0002_numbering
Revises: 0001_foundation
Create Date: 2026-11-25 22:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_numbering"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "blocks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("prefix", sa.String(length=7, collation="C"), nullable=False),
        sa.Column("segment", sa.String(length=4), nullable=False),
        sa.Column("host", sa.String(length=4), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("mvno_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("prefix ~ '^1[0-9]{6}$'", name=op.f("ck_blocks_prefix_format")),
        sa.CheckConstraint("status IN ('active', 'returned')", name=op.f("ck_blocks_status")),
        sa.CheckConstraint("size = 10000", name=op.f("ck_blocks_size")),
        sa.CheckConstraint("starts_with(prefix, segment)", name=op.f("ck_blocks_prefix_in_segment")),
        sa.ForeignKeyConstraint(["mvno_id"], ["mvnos.id"], name=op.f("fk_blocks_mvno_id_mvnos")),
        sa.ForeignKeyConstraint(["province"], ["provinces.code"], name=op.f("fk_blocks_province_provinces")),
        sa.ForeignKeyConstraint(
            ["segment", "host"], ["segments.code", "segments.host"], name="fk_blocks_segment_host"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocks")),
        sa.UniqueConstraint("prefix", name=op.f("uq_blocks_prefix")),
    )
    op.create_index("ix_blocks_mvno_id_prefix", "blocks", ["mvno_id", "prefix"], unique=False)
    op.create_index("ix_blocks_segment_province", "blocks", ["segment", "province"], unique=False)
    op.create_table(
        "numbers",
        sa.Column("msisdn", sa.String(length=11, collation="C"), nullable=False),
        sa.Column(
            "block_prefix",
            sa.String(length=7, collation="C"),
            sa.Computed("substr(msisdn, 1, 7)", persisted=True),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("reservation_id", sa.String(length=40), nullable=True),
        sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("line_id", sa.String(length=40), nullable=True),
        sa.Column("quarantine_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("grade IN ('standard', 'premium')", name=op.f("ck_numbers_grade")),
        sa.CheckConstraint("msisdn ~ '^1[0-9]{10}$'", name=op.f("ck_numbers_msisdn_format")),
        sa.CheckConstraint(
            "status <> 'reserved' OR (reservation_id IS NOT NULL AND reserved_until IS NOT NULL)",
            name=op.f("ck_numbers_reserved_has_reservation"),
        ),
        sa.CheckConstraint(
            "status IN ('available', 'reserved', 'in_use', 'quarantined')",
            name=op.f("ck_numbers_status"),
        ),
        sa.ForeignKeyConstraint(
            ["block_prefix"], ["blocks.prefix"], name=op.f("fk_numbers_block_prefix_blocks")
        ),
        sa.PrimaryKeyConstraint("msisdn", name=op.f("pk_numbers")),
    )
    op.create_index(
        "ix_numbers_claimable",
        "numbers",
        ["msisdn"],
        unique=False,
        postgresql_where=sa.text("status IN ('available', 'reserved')"),
    )
    op.create_index(
        "ix_numbers_block_prefix_status",
        "numbers",
        ["block_prefix", "status", "reserved_until"],
        unique=False,
    )
    op.create_index(
        "ix_numbers_msisdn_reversed",
        "numbers",
        [sa.literal_column("reverse(msisdn)")],
        unique=False,
    )
    op.create_index(
        "ix_numbers_msisdn_trgm",
        "numbers",
        ["msisdn"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"msisdn": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_numbers_premium",
        "numbers",
        ["msisdn"],
        unique=False,
        postgresql_where=sa.text("grade = 'premium'"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("msisdn", sa.String(length=11, collation="C"), nullable=False),
        sa.Column("mvno_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_key_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'released', 'expired', 'consumed')",
            name=op.f("ck_reservations_status"),
        ),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_reservations_expires_after_created")),
        sa.ForeignKeyConstraint(["msisdn"], ["numbers.msisdn"], name=op.f("fk_reservations_msisdn_numbers")),
        sa.ForeignKeyConstraint(["mvno_id"], ["mvnos.id"], name=op.f("fk_reservations_mvno_id_mvnos")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    op.create_index(
        "ix_reservations_active_expires_at",
        "reservations",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(op.f("ix_reservations_msisdn"), "reservations", ["msisdn"], unique=False)
    op.create_index("ix_reservations_mvno_id_id", "reservations", ["mvno_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reservations_mvno_id_id", table_name="reservations")
    op.drop_index(op.f("ix_reservations_msisdn"), table_name="reservations")
    op.drop_index(
        "ix_reservations_active_expires_at",
        table_name="reservations",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("reservations")
    op.drop_index("ix_numbers_premium", table_name="numbers", postgresql_where=sa.text("grade = 'premium'"))
    op.drop_index(
        "ix_numbers_msisdn_trgm",
        table_name="numbers",
        postgresql_using="gin",
        postgresql_ops={"msisdn": "gin_trgm_ops"},
    )
    op.drop_index("ix_numbers_msisdn_reversed", table_name="numbers")
    op.drop_index("ix_numbers_block_prefix_status", table_name="numbers")
    op.drop_index(
        "ix_numbers_claimable",
        table_name="numbers",
        postgresql_where=sa.text("status IN ('available', 'reserved')"),
    )
    op.drop_table("numbers")
    op.drop_index("ix_blocks_segment_province", table_name="blocks")
    op.drop_index("ix_blocks_mvno_id_prefix", table_name="blocks")
    op.drop_table("blocks")
