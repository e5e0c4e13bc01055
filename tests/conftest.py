"""Test fixtures: a real PostgreSQL (embedded unless MVNO_TEST_DATABASE_URL / MVNO_DATABASE_URL is set),
a fresh database migrated by Alembic once per run (as the owner), and the real app served in-process
over ASGI, connected as the restricted service role (as in production).

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
from mvno_core.kernel.embedded import as_role, ensure_database, ensure_role, start_embedded
from mvno_core.main import create_app
from mvno_core.ops import migrate
from tests import factories

warnings.filterwarnings("ignore", module="platformdirs")

APP_ROLE = "mvno_app_test"
# The audit signing key and the files beside it live in a temporary folder (CLI subprocesses inherit it).
KEY_DIR = Path(tempfile.mkdtemp(prefix="mvno-test-keys-"))
os.environ["MVNO_AUDIT_SIGNING_KEY_FILE"] = str(KEY_DIR / "audit-signing.key")


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


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def migrated_database(admin: str, name: str) -> tuple[str, str]:
    """A fresh database migrated as the owner, with the service role granted: (owner URL, app URL)."""
    owner = ensure_database(admin, name)
    ensure_role(admin, APP_ROLE)
    migrate.upgrade(owner)
    migrate.grant_app_role(owner, APP_ROLE)
    return owner, as_role(owner, APP_ROLE)


@pytest.fixture(scope="session")
def admin_url() -> str:
    return _admin_url()


@pytest.fixture(scope="session")
def database_urls(admin_url: str) -> tuple[str, str]:
    return migrated_database(admin_url, f"mvno_test_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def owner_url(database_urls: tuple[str, str]) -> str:
    return database_urls[0]


@pytest.fixture(scope="session")
def database_url(database_urls: tuple[str, str]) -> str:
    """The service's URL: the restricted role the app runs as."""
    return database_urls[1]


@pytest.fixture(scope="session")
def conninfo(owner_url: str) -> str:
    """libpq connection string of the owner (a DBA) for raw psycopg connections (not the app's pool)."""
    return _libpq(owner_url)


@pytest.fixture(scope="session")
def app_conninfo(database_url: str) -> str:
    """libpq connection string of the service's restricted role."""
    return _libpq(database_url)


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
        database_url=database_url,
        run_sweeper_in_server=False,
        db_pool_size=30,
        db_max_overflow=30,
        audit_signing_key_file=KEY_DIR / "audit-signing.key",
        # Webhook receivers in tests listen on 127.0.0.1.
        webhook_allow_loopback_urls=True,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings, clock: ShiftableClock) -> AsyncIterator[object]:
    application = create_app(settings, clock=clock, run_sweeper=False)
    yield application
    await application.state.lean_pool.close()
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


class Isolated:
    """A database of its own with its own app, client and signing key, for tests that destroy data
    (wipe the audit chain, fill the feed with 100k events, dump and restore)."""

    def __init__(self, admin: str, owner: str, app_url: str, key_dir: Path, clock: ShiftableClock) -> None:
        self.admin = admin
        self.owner = owner
        self.app_url = app_url
        self.key_dir = key_dir
        self.settings = Settings(
            database_url=app_url,
            run_sweeper_in_server=False,
            db_pool_size=5,
            db_max_overflow=5,
            audit_signing_key_file=key_dir / "audit-signing.key",
        )
        self.app = create_app(self.settings, clock=clock, run_sweeper=False)
        self.db: Database = self.app.state.db
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url="http://testserver",
            timeout=60,
        )

    @property
    def owner_conninfo(self) -> str:
        return _libpq(self.owner)

    async def operator(self) -> dict[str, str]:
        return factories.bearer(await factories.create_key(self.db, role="operator"))

    async def close(self) -> None:
        await self.client.aclose()
        await self.db.dispose()


@pytest.fixture
async def isolated(admin_url: str, clock: ShiftableClock, tmp_path: Path) -> AsyncIterator[Isolated]:
    owner, app_url = migrated_database(admin_url, f"mvno_iso_{uuid.uuid4().hex[:8]}")
    box = Isolated(admin_url, owner, app_url, tmp_path / "keys", clock)
    try:
        yield box
    finally:
        await box.close()
