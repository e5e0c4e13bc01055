"""Run Alembic migrations from code (CLI, server start, tests), as the owner, then grant the service's
role exactly what it needs.

Least privilege for the service's role: it owns nothing, so it cannot ALTER a table, disable a trigger
or TRUNCATE; it reads and writes the domain tables; on the ledger it may only INSERT and SELECT, plus
UPDATE of the columns the sequencers fill (``audit_entries``: chain_pos, prev_hash, chain_hash;
``events``: position). The owner's append-only trigger still refuses to change a linked row. Linking
as the service role with column privileges (rather than as the owner) keeps the owner's credentials
out of the running service altogether.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

from mvno_core.kernel.embedded import DatabaseUrls

REPO_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["skip_logging"] = True
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


# Tables the service may only append to and read (its sequencers fill the columns below).
APPEND_ONLY_TABLES = ("audit_entries", "audit_checkpoints", "events", "alembic_version")
SEQUENCER_COLUMNS = {"audit_entries": ("chain_pos", "prev_hash", "chain_hash"), "events": ("position",)}


def grant_app_role(owner_url: str, role: str) -> None:
    """Idempotent; run after every migration (new tables need their grants)."""
    ident = sql.Identifier(role)
    conninfo = make_url(owner_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident)
        )
        conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident))
        conn.execute(
            sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {}").format(
                ident
            )
        )
        for table in APPEND_ONLY_TABLES:
            conn.execute(sql.SQL("REVOKE UPDATE, DELETE ON {} FROM {}").format(sql.Identifier(table), ident))
        conn.execute(sql.SQL("REVOKE INSERT ON alembic_version FROM {}").format(ident))
        for table, columns in SEQUENCER_COLUMNS.items():
            conn.execute(
                sql.SQL("GRANT UPDATE ({}) ON {} TO {}").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(table), ident
                )
            )


def upgrade_and_grant(urls: DatabaseUrls, revision: str = "head") -> None:
    upgrade(urls.owner, revision)
    if urls.app_role is not None:
        grant_app_role(urls.owner, urls.app_role)
