"""Liveness, readiness and metrics (no authentication, no database writes)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from mvno_core.kernel.problems import ServiceUnavailable

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    migration: str | None
    expected_migration: str | None


def expected_head() -> str | None:
    from alembic.script import ScriptDirectory

    from mvno_core.ops.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config(url="")).get_current_head()


def current_revision(url: str) -> str | None:
    """The revision the database is migrated to; None for a database Alembic never touched."""
    import psycopg
    from psycopg import errors
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except errors.UndefinedTable:
            return None
    return str(row[0]) if row else None


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", summary="Readiness: database reachable and migrated to head")
async def readyz(request: Request) -> Readiness:
    head = request.app.state.migration_head
    try:
        async with request.app.state.db.engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:
        raise ServiceUnavailable("The database is not reachable or not migrated.") from exc
    if current != head:
        raise ServiceUnavailable(f"Database at migration {current}, expected {head}.")
    return Readiness(status="ok", database="ok", migration=current, expected_migration=head)


@router.get(
    "/metrics",
    summary="Prometheus metrics (HTTP, audit sequencing, event feed, pool)",
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    state = request.app.state
    try:
        async with state.db.engine.connect() as conn:
            pending = await conn.scalar(text("SELECT count(*) FROM audit_entries WHERE chain_pos IS NULL"))
            # Committed events the feed sequencer has not positioned yet (index-only: a partial index).
            held_back = await conn.scalar(text("SELECT count(*) FROM events WHERE position IS NULL"))
        state.metrics.audit_pending.set(pending or 0)
        state.metrics.feed_held_back.set(held_back or 0)
        state.metrics.database_up.set(1)
    except Exception:
        # No stale figures: unknown is NaN, and mvno_database_up says why.
        log.warning("metrics: database gauges unavailable", exc_info=False)
        state.metrics.audit_pending.set(float("nan"))
        state.metrics.feed_held_back.set(float("nan"))
        state.metrics.database_up.set(0)
    pool = state.db.engine.pool
    checked_out = getattr(pool, "checkedout", None)
    if callable(checked_out):
        state.metrics.pool_checked_out.set(checked_out())
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
