"""The lean lane (kernel/lean.py) serves a partner's activation; it answers only successes and replays,
and hands everything else to the full stack, which must then answer exactly as it would alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.kernel.lean import LANE_APPLICATION_NAME
from tests import factories
from tests.factories import assert_problem
from tests.lines.conftest import Scene
from tests.reservations.test_round_trips import counting

# Fields that differ between two activations by construction.
_PER_LINE = {"id", "msisdn", "iccid", "imsi", "activated_at"}


async def _warm(client: httpx.AsyncClient, scene: Scene) -> None:
    """Authenticate once through the full stack, and read the line profiles: the lane serves only keys
    in the principal cache and profiles in the process's copy (the served app loads it at start-up)."""
    assert (await client.get("/v1/segments", headers=scene.partner)).status_code == 200
    assert (await client.get("/v1/line-profiles", headers=scene.partner)).status_code == 200


async def _served_count(client: httpx.AsyncClient, operator: dict[str, str]) -> float:
    """``mvno_http_requests_total`` for activations answered 201, as /metrics shows it."""
    metrics = (await client.get("/metrics", headers=operator)).text
    label = 'mvno_http_requests_total{method="POST",route="/v1/lines",status="201"} '
    return next(
        (float(line.removeprefix(label)) for line in metrics.splitlines() if line.startswith(label)), 0.0
    )


def _audit_count(raw: psycopg.Connection, mvno_id: str) -> int:
    row = raw.execute("SELECT count(*) FROM audit_entries WHERE mvno_id = %s", (mvno_id,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_the_lane_and_the_full_stack_answer_alike(
    client: httpx.AsyncClient,
    scene: Scene,
    db: Database,
    app: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _warm(client, scene)
    with counting(db, app.state.lean_pool) as seen:
        lane = await scene.activate(client, scene.number(0))
    # Served by the lane: one statement in autocommit, nothing through the engine.
    assert seen.commits == 0
    assert len(seen.statements) == 1, seen.statements
    assert "INSERT INTO lines" in seen.statements[0]

    monkeypatch.setattr(settings, "lean_lane", False)
    with counting(db, app.state.lean_pool) as seen:
        full = await scene.activate(client, scene.number(1))
    # Served by the full stack: its statements went through the engine, none joined the key check.
    assert seen.commits == 1
    assert any("INSERT INTO lines" in statement for statement in seen.statements)
    assert all("key_check" not in statement for statement in seen.statements)

    assert lane.status_code == full.status_code == 201
    for name in ("content-type", "location"):
        assert name in lane.headers
        assert name in full.headers
    assert lane.headers["content-type"] == full.headers["content-type"]
    assert lane.headers["location"] == f"/v1/lines/{lane.json()['id']}"
    assert set(lane.headers) - {"date", "server"} == set(full.headers) - {"date", "server"}
    lane_body, full_body = lane.json(), full.json()
    assert lane_body.keys() == full_body.keys()
    assert {k: v for k, v in lane_body.items() if k not in _PER_LINE} == {
        k: v for k, v in full_body.items() if k not in _PER_LINE
    }
    # What a partner reads back afterwards is what the lane answered.
    shown = await client.get(lane.headers["location"], headers=scene.partner)
    assert shown.json() == lane_body


async def test_a_replay_is_declined_by_the_lane_and_answered_by_the_full_stack(
    client: httpx.AsyncClient, scene: Scene, db: Database, app: Any, raw: psycopg.Connection
) -> None:
    await _warm(client, scene)
    body = scene.line_body(scene.number(2))
    headers = {**scene.partner, "Idempotency-Key": f"lane-{scene.number(2)}"}
    first = await client.post("/v1/lines", json=body, headers=headers)
    audited = _audit_count(raw, scene.mvno_id)
    with counting(db, app.state.lean_pool) as seen:
        again = await client.post("/v1/lines", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    # The lane's statement (key check joined) raised; the full stack replayed; nothing was written.
    assert sum("key_check" in statement for statement in seen.statements) == 1
    assert _audit_count(raw, scene.mvno_id) == audited
    lines = raw.execute("SELECT count(*) FROM lines WHERE msisdn = %s", (scene.number(2),)).fetchone()
    assert lines == (1,)

    # The same key with another body: the lane declines, the full stack answers 422.
    other = await client.post("/v1/lines", json=scene.line_body(scene.number(3)), headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")
    lines = raw.execute("SELECT count(*) FROM lines WHERE msisdn = %s", (scene.number(3),)).fetchone()
    assert lines == (0,)


async def test_a_refused_activation_is_declined_unchanged_and_answered_by_the_full_stack(
    client: httpx.AsyncClient, scene: Scene, db: Database, app: Any, raw: psycopg.Connection
) -> None:
    await _warm(client, scene)
    taken = await scene.activate(client, scene.number(4))
    assert taken.status_code == 201
    audited = _audit_count(raw, scene.mvno_id)
    with counting(db, app.state.lean_pool) as seen:
        refused = await scene.activate(
            client, scene.number(4), headers={**scene.partner, "Idempotency-Key": "lane-refused"}
        )
    assert_problem(refused, 409, "number_unavailable")
    # The lane tried (one statement, which raised); the full stack then ran and rolled back.
    assert seen.commits == 0
    assert sum("key_check" in statement for statement in seen.statements) == 1
    assert _audit_count(raw, scene.mvno_id) == audited
    kept = raw.execute("SELECT count(*) FROM idempotency_keys WHERE key = 'lane-refused'").fetchone()
    assert kept == (0,)
    # A body the model refuses reaches the full stack's validation, field by field.
    bad = await client.post(
        "/v1/lines", json=scene.line_body(scene.number(5), imsi="not-an-imsi"), headers=scene.partner
    )
    assert_problem(bad, 422, "validation_error")
    assert any(error["loc"][-1] == "imsi" for error in bad.json()["errors"])


async def test_an_unknown_key_is_refused_by_the_full_stack(client: httpx.AsyncClient, scene: Scene) -> None:
    response = await client.post(
        "/v1/lines",
        json=scene.line_body(scene.number(6)),
        headers={"Authorization": "Bearer mvno_not_a_real_key"},
    )
    assert_problem(response, 401, "unauthorized")


async def test_a_connection_the_server_ended_is_replaced_before_the_request_runs(
    client: httpx.AsyncClient, scene: Scene, db: Database, app: Any, raw: psycopg.Connection
) -> None:
    await _warm(client, scene)
    assert (await scene.activate(client, scene.number(7))).status_code == 201  # the lane's pool is open
    database = raw.info.dbname
    ended = [
        pid
        for (pid,) in raw.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (database, LANE_APPLICATION_NAME),
        ).fetchall()
    ]
    assert ended, "the lane's connections were not found"
    raw.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (ended,))
    for _ in range(200):  # the sessions end (and say so on their sockets) a moment after the signal
        alive = raw.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (ended,)).fetchone()
        if alive == (0,):
            break
        await asyncio.sleep(0.01)
    with counting(db, app.state.lean_pool) as seen:
        after = await scene.activate(client, scene.number(8))
    assert after.status_code == 201, after.text
    assert len(seen.statements) == 1  # served by the lane, on a fresh connection, first time


async def test_a_key_not_in_the_cache_is_looked_up_by_the_lane_itself(
    client: httpx.AsyncClient, scene: Scene, db: Database, app: Any
) -> None:
    await _warm(client, scene)
    fresh = factories.bearer(await factories.create_key(db, role="partner", mvno_id=scene.mvno_id))
    with counting(db, app.state.lean_pool) as seen:
        response = await scene.activate(client, scene.number(9), headers=fresh)
    assert response.status_code == 201, response.text
    # The key's lookup and the activation, both on the lane's connection; nothing through the engine.
    assert len(seen.statements) == 2, seen.statements
    assert "FROM api_keys" in seen.statements[0]
    assert "INSERT INTO lines" in seen.statements[1]


async def test_the_lane_keeps_the_request_id_metrics_and_access_log(
    client: httpx.AsyncClient,
    scene: Scene,
    db: Database,
    app: Any,
    raw: psycopg.Connection,
    operator: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The lane answers before Starlette's middleware stack: it does the outer layers' work itself."""
    await _warm(client, scene)
    before = await _served_count(client, operator)
    caplog.set_level("INFO", logger="mvno_core.access")
    with counting(db, app.state.lean_pool) as seen:
        answered = await scene.activate(
            client, scene.number(0), headers={**scene.partner, "X-Request-ID": "trace-lane-1"}
        )
    assert answered.status_code == 201
    assert seen.commits == 0, "the lane did not serve it"
    assert len(seen.statements) == 1
    assert answered.headers["x-request-id"] == "trace-lane-1"
    logged = [
        r
        for r in caplog.records
        if r.name == "mvno_core.access" and r.__dict__.get("request_id") == "trace-lane-1"
    ]
    assert len(logged) == 1
    entry = logged[0].__dict__
    assert (entry["route"], entry["status"], entry["method"]) == ("/v1/lines", 201, "POST")
    key = raw.execute(
        "SELECT id FROM api_keys WHERE mvno_id = %s AND role = 'partner'", (scene.mvno_id,)
    ).fetchall()
    assert entry["key_id"] in {row[0] for row in key}
    assert await _served_count(client, operator) == before + 1


async def test_an_unexpected_error_in_the_lane_is_a_generic_500_problem(
    client: httpx.AsyncClient, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mvno_core.lines import activation

    await _warm(client, scene)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(activation, "activate_in_lane", broken)
    answered = await scene.activate(
        client, scene.number(0), headers={**scene.partner, "X-Request-ID": "trace-lane-2"}
    )
    assert_problem(answered, 500, "internal_error")
    assert answered.headers["x-request-id"] == "trace-lane-2"
    assert "secret internals" not in answered.text
    assert "Traceback" not in answered.text


async def test_a_connection_lost_during_the_statement_is_a_503_and_changes_nothing(
    client: httpx.AsyncClient,
    scene: Scene,
    app: Any,
    raw: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether a statement took effect is unknown when its connection drops, so the lane does not run
    it again: 503 with Retry-After, and the client retries (its key would replay an effect)."""
    await _warm(client, scene)
    pool = app.state.lean_pool
    sent = pool.fetch_one_direct

    async def killed_first(connection: Any, sql: str, params: Any) -> Any:
        if "INSERT INTO lines" in sql:
            raw.execute("SELECT pg_terminate_backend(%s)", (connection.info.backend_pid,))
            await asyncio.sleep(0.2)  # the FATAL message reaches the socket
        return await sent(connection, sql, params)

    monkeypatch.setattr(pool, "fetch_one_direct", killed_first)
    before = _audit_count(raw, scene.mvno_id)
    answered = await scene.activate(client, scene.number(0))
    assert_problem(answered, 503, "service_unavailable")
    assert answered.headers["retry-after"] == "1"
    assert "x-request-id" in answered.headers
    assert _audit_count(raw, scene.mvno_id) == before
    row = raw.execute("SELECT count(*) FROM lines WHERE msisdn = %s", (scene.number(0),)).fetchone()
    assert row == (0,)
