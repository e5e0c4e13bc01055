"""Ledger: feed positions that belong to the data, signed audit checkpoints.

* ``events.position``: a gap-free ``bigint`` the feed sequencer gives each committed event in the order
  it became visible. It replaces ``txid`` (a transaction id belongs to one server: after a dump and
  restore old cursors saw nothing, and an open transaction anywhere held the feed back). Existing rows
  get positions in their old feed order, so the feed's order of what was already served is unchanged.
* ``audit_checkpoints``: ``(length, head hash, time)`` of the audit chain, signed with a key the
  database does not hold. The service's role may only insert and read them (see ``ops/migrate.py``).

Revision ID: 0005_ledger
Revises: 0004_subscribers
Create Date: 2026-11-29 11:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_ledger"
down_revision: str | None = "0004_subscribers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The feed sequencer's whole run in one call (one round trip, in autocommit): take the lock, then number
# what is committed. A VOLATILE function's statements each take a fresh snapshot, so the UPDATE sees
# every commit that happened before the lock was granted. Runs with the caller's privileges (the
# service role may UPDATE only ``events.position``). NULL: another sequencer holds the lock.
POSITION_FUNCTION = """
CREATE FUNCTION events_position_pending(batch integer) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    positioned integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(2, 1) THEN
        RETURN NULL;
    END IF;
    WITH head AS (
        SELECT coalesce(max(position), 0) AS last FROM events WHERE position IS NOT NULL
    ), pending AS (
        SELECT id, row_number() OVER (ORDER BY seq) AS n
        FROM (SELECT id, seq FROM events WHERE position IS NULL ORDER BY seq LIMIT batch) AS p
    )
    UPDATE events e SET position = head.last + pending.n
    FROM head, pending WHERE e.id = pending.id;
    GET DIAGNOSTICS positioned = ROW_COUNT;
    RETURN positioned;
END
$$
"""


def upgrade() -> None:
    op.add_column("events", sa.Column("position", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE events e SET position = o.n FROM "
        "(SELECT id, row_number() OVER (ORDER BY txid, seq) AS n FROM events) AS o WHERE e.id = o.id"
    )
    op.drop_index("ix_events_mvno_feed", table_name="events")
    op.drop_index("ix_events_feed", table_name="events")
    op.drop_column("events", "txid")
    op.create_unique_constraint(op.f("uq_events_position"), "events", ["position"])
    op.create_index("ix_events_mvno_feed", "events", ["mvno_id", "position"], unique=False)
    op.create_index(
        "ix_events_unpositioned",
        "events",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("position IS NULL"),
    )
    op.execute(POSITION_FUNCTION)
    op.create_table(
        "audit_checkpoints",
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("length", name=op.f("pk_audit_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.execute("DROP FUNCTION events_position_pending(integer)")
    op.drop_index("ix_events_unpositioned", table_name="events", postgresql_where=sa.text("position IS NULL"))
    op.drop_index("ix_events_mvno_feed", table_name="events")
    op.drop_constraint(op.f("uq_events_position"), "events", type_="unique")
    op.add_column(
        "events",
        sa.Column(
            "txid",
            sa.BigInteger(),
            server_default=sa.text("(pg_current_xact_id()::text)::bigint"),
            nullable=False,
        ),
    )
    op.drop_column("events", "position")
    op.create_index("ix_events_feed", "events", ["txid", "seq"], unique=False)
    op.create_index("ix_events_mvno_feed", "events", ["mvno_id", "txid", "seq"], unique=False)
