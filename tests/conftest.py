"""Test fixtures: a real PostgreSQL (embedded unless MVNO_TEST_DATABASE_URL / MVNO_DATABASE_URL is set),
a fresh database migrated by Alembic once per run, and the real app served in-process over ASGI.

Tests create their own MVNOs/blocks with unique codes, so they never depend on each other's data, and
they exercise real commits (the transaction boundary is part of what is tested).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.kernel.embedded import ensure_database, start_embedded
from mvno_core.main import create_app
from mvno_core.ops import migrate
from tests import factories

warnings.filterwarnings("ignore", module="platformdirs")


class ShiftableClock:
    """Real time plus an offset that tests can push forward (never back)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def _admin_url() -> str:
    given = os.environ.get("MVNO_TEST_DATABASE_URL") or os.environ.get("MVNO_DATABASE_URL")
    if given:
        return given
    data_dir = Path(tempfile.mkdtemp(prefix="mvno-test-"))
    # The server deletes its own pg/ folder in an exit hook; this one, registered first, runs after it
    # (exit hooks run last-in, first-out) and removes the folder around it.
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return start_embedded(data_dir, delete_on_exit=True)


@pytest.fixture(scope="session")
def database_url() -> str:
    admin = _admin_url()
    name = f"mvno_test_{uuid.uuid4().hex[:8]}"
    url = ensure_database(admin, name)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def conninfo(database_url: str) -> str:
    """libpq connection string for raw psycopg connections (separate from the app's pool)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def raw(conninfo: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def clock() -> ShiftableClock:
    return ShiftableClock()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, run_sweeper_in_server=False, db_pool_size=30, db_max_overflow=30
    )


@pytest.fixture(scope="session")
async def app(settings: Settings, clock: ShiftableClock) -> AsyncIterator[object]:
    application = create_app(settings, clock=clock, run_sweeper=False)
    yield application
    await application.state.db.dispose()


@pytest.fixture(scope="session")
def db(app: object) -> Database:
    database: Database = app.state.db  # type: ignore[attr-defined]
    return database


@pytest.fixture(scope="session")
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
async def operator(db: Database) -> dict[str, str]:
    return factories.bearer(await factories.create_key(db, role="operator"))


@pytest.fixture(scope="session")
async def regulator(db: Database) -> dict[str, str]:
    return factories.bearer(await factories.create_key(db, role="regulator"))


@pytest.fixture
async def mvno(client: httpx.AsyncClient, operator: dict[str, str]) -> dict[str, object]:
    return await factories.create_mvno(client, operator)


@pytest.fixture
async def partner(db: Database, mvno: dict[str, object]) -> dict[str, str]:
    return factories.bearer(await factories.create_key(db, role="partner", mvno_id=str(mvno["id"])))


@pytest.fixture
async def other_mvno(client: httpx.AsyncClient, operator: dict[str, str]) -> dict[str, object]:
    return await factories.create_mvno(client, operator)
