"""Foundation: MVNO registry, API keys, reference data, idempotency, audit log, event outbox.

The audit log is append-only: a trigger refuses DELETE, TRUNCATE and any UPDATE except the sequencer
filling the chain columns of a row not yet linked.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-25 21:58
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

from mvno_core.reference.data import PROVINCES, SEGMENTS  # noqa: E402

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'audit_entries is append-only (% refused)', TG_OP;
    END IF;
    IF OLD.chain_pos IS NOT NULL
       OR (to_jsonb(NEW) - 'chain_pos' - 'prev_hash' - 'chain_hash')
          IS DISTINCT FROM (to_jsonb(OLD) - 'chain_pos' - 'prev_hash' - 'chain_hash') THEN
        RAISE EXCEPTION 'audit_entries is append-only (only the sequencer links new rows)';
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_key_id", sa.String(length=40), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_mvno_id", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("mvno_id", sa.String(length=40), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("chain_pos", sa.BigInteger(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column("chain_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("chain_pos", name=op.f("uq_audit_entries_chain_pos")),
    )
    op.create_index("ix_audit_entries_mvno_id", "audit_entries", ["mvno_id", "id"], unique=False)
    op.create_index(
        "ix_audit_entries_subject",
        "audit_entries",
        ["subject_kind", "subject_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_audit_entries_unchained",
        "audit_entries",
        ["id"],
        unique=False,
        postgresql_where=sa.text("chain_pos IS NULL"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mvno_id", sa.String(length=40), nullable=True),
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "txid",
            sa.BigInteger(),
            server_default=sa.text("(pg_current_xact_id()::text)::bigint"),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("seq", name=op.f("uq_events_seq")),
    )
    op.create_index("ix_events_feed", "events", ["txid", "seq"], unique=False)
    op.create_index("ix_events_mvno_feed", "events", ["mvno_id", "txid", "seq"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("api_key_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(op.f("ix_idempotency_keys_expires_at"), "idempotency_keys", ["expires_at"], unique=False)
    op.create_table(
        "mvnos",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("legal_name", sa.Text(), nullable=False),
        sa.Column("license_no", sa.Text(), nullable=False),
        sa.Column("hosts", postgresql.ARRAY(sa.String(length=4)), nullable=False),
        sa.Column("licensed_provinces", postgresql.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "cardinality(hosts) >= 1 AND hosts <@ ARRAY['CMCC', 'CUCC', 'CTCC']::varchar[]",
            name=op.f("ck_mvnos_hosts"),
        ),
        sa.CheckConstraint("code ~ '^[a-z0-9-]{2,32}$'", name=op.f("ck_mvnos_code_slug")),
        sa.CheckConstraint(
            "status IN ('active', 'restricted', 'exiting', 'terminated')",
            name=op.f("ck_mvnos_status"),
        ),
        sa.CheckConstraint("cardinality(licensed_provinces) >= 1", name=op.f("ck_mvnos_licensed_provinces")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mvnos")),
        sa.UniqueConstraint("code", name=op.f("uq_mvnos_code")),
    )
    op.create_table(
        "provinces",
        sa.Column("code", sa.String(length=2), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_provinces")),
    )
    op.create_table(
        "segments",
        sa.Column("code", sa.String(length=4), nullable=False),
        sa.Column("host", sa.String(length=4), nullable=False),
        sa.CheckConstraint("host IN ('CMCC', 'CUCC', 'CTCC')", name=op.f("ck_segments_host")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_segments")),
        sa.UniqueConstraint("code", "host", name=op.f("uq_segments_code_host")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("mvno_id", sa.String(length=40), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'partner') = (mvno_id IS NOT NULL)", name=op.f("ck_api_keys_partner_has_mvno")
        ),
        sa.CheckConstraint("role IN ('operator', 'partner', 'regulator')", name=op.f("ck_api_keys_role")),
        sa.ForeignKeyConstraint(["mvno_id"], ["mvnos.id"], name=op.f("fk_api_keys_mvno_id_mvnos")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_keys_secret_hash")),
    )
    op.create_index(op.f("ix_api_keys_mvno_id"), "api_keys", ["mvno_id"], unique=False)
    op.bulk_insert(
        sa.table("segments", sa.column("code", sa.String), sa.column("host", sa.String)),
        [{"code": s.code, "host": s.host.value} for s in SEGMENTS.values()],
    )
    op.bulk_insert(
        sa.table(
            "provinces",
            sa.column("code", sa.String),
            sa.column("name", sa.Text),
            sa.column("name_en", sa.Text),
        ),
        [{"code": code, "name": zh, "name_en": en} for code, (zh, en) in PROVINCES.items()],
    )
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_entries_no_truncate ON audit_entries")
    op.execute("DROP TRIGGER audit_entries_append_only ON audit_entries")
    op.execute("DROP FUNCTION audit_entries_append_only()")
    op.drop_index(op.f("ix_api_keys_mvno_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("segments")
    op.drop_table("provinces")
    op.drop_table("mvnos")
    op.drop_index(op.f("ix_idempotency_keys_expires_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_events_mvno_feed", table_name="events")
    op.drop_index("ix_events_feed", table_name="events")
    op.drop_table("events")
    op.drop_index(
        "ix_audit_entries_unchained",
        table_name="audit_entries",
        postgresql_where=sa.text("chain_pos IS NULL"),
    )
    op.drop_index("ix_audit_entries_subject", table_name="audit_entries")
    op.drop_index("ix_audit_entries_mvno_id", table_name="audit_entries")
    op.drop_table("audit_entries")
