"""Kill -9 under load: nothing acknowledged is lost, and retries converge to one effect each.

A real server process (started as the benchmark starts it) takes concurrent reservations and
activations over HTTP, each with its own Idempotency-Key. Mid-load it gets SIGKILL; a new server starts
on the same database. Then: every request that was answered 2xx is in the database, and sending every
request again with the same key gives each exactly one effect (a replay for those that committed, a
first execution for those that died with the process).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from bench.server import _stop, start_server

from tests import factories
from tests.lines.conftest import Scene, iccid, imsi

CONCURRENCY = 12
RESERVATIONS = 120
ACTIVATIONS = 40
KILL_AFTER_ACKS = 50


@dataclass
class Op:
    path: str
    body: dict[str, Any]
    msisdn: str
    key: str = field(default_factory=lambda: f"crash-{uuid.uuid4()}")
    acked: dict[str, Any] | None = None  # the 2xx body, if one was received


async def _run(
    client: httpx.AsyncClient, ops: list[Op], headers: dict[str, str], stop: asyncio.Event
) -> None:
    queue: asyncio.Queue[Op] = asyncio.Queue()
    for op in ops:
        queue.put_nowait(op)

    async def worker() -> None:
        while not stop.is_set() and not queue.empty():
            op = queue.get_nowait()
            try:
                response = await client.post(
                    op.path, json=op.body, headers={**headers, "Idempotency-Key": op.key}
                )
            except httpx.TransportError:
                return  # the server is gone
            if 200 <= response.status_code < 300:
                op.acked = response.json()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def _retry(client: httpx.AsyncClient, op: Op, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(50):
        response = await client.post(op.path, json=op.body, headers={**headers, "Idempotency-Key": op.key})
        if response.status_code == 409 and response.json()["code"] == "idempotency_key_in_flight":
            await asyncio.sleep(0.1)  # the dead server's transaction is still being rolled back
            continue
        assert 200 <= response.status_code < 300, (op.path, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body
    raise AssertionError(f"{op.key} stayed in flight")


async def test_kill_9_under_load_loses_no_acknowledged_request(
    client: httpx.AsyncClient, scene: Scene, database_url: str, raw: psycopg.Connection
) -> None:
    started = time.monotonic()
    subscribers = [scene.subscriber_id] + [
        (await factories.create_subscriber(client, scene.partner, verified=True))["id"]
        for _ in range(ACTIVATIONS // 5)
    ]
    numbers = [scene.number(n) for n in range(RESERVATIONS + ACTIVATIONS)]
    ops = [Op("/v1/reservations", {"msisdn": msisdn}, msisdn) for msisdn in numbers[:RESERVATIONS]]
    ops += [
        Op(
            "/v1/lines",
            {
                "subscriber_id": subscribers[i // 5],
                "msisdn": msisdn,
                "iccid": iccid(),
                "imsi": imsi("00"),
            },
            msisdn,
        )
        for i, msisdn in enumerate(numbers[RESERVATIONS:])
    ]
    # Interleave the two kinds, so both are in flight when the kill lands.
    ops.sort(key=lambda op: op.key)

    process, base_url = start_server(database_url)
    port = int(base_url.rsplit(":", 1)[1])
    try:
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as http:
            stop = asyncio.Event()
            load = asyncio.create_task(_run(http, ops, scene.partner, stop))
            while sum(op.acked is not None for op in ops) < KILL_AFTER_ACKS and not load.done():
                await asyncio.sleep(0.005)
            os.kill(process.pid, signal.SIGKILL)  # mid-load, requests in flight
            process.wait(timeout=10)
            stop.set()
            await load
    finally:
        _stop(process)
    acked = [op for op in ops if op.acked is not None]
    assert KILL_AFTER_ACKS <= len(acked) < len(ops), "the kill must land mid-load"

    # Every acknowledged request is in the database, as it was answered.
    for op in acked:
        assert op.acked is not None
        table = "reservations" if op.path == "/v1/reservations" else "lines"
        row = raw.execute(f"SELECT msisdn FROM {table} WHERE id = %s", (op.acked["id"],)).fetchone()
        assert row == (op.msisdn,), f"acknowledged {op.path} {op.acked['id']} is missing"

    # A new server on the same database; every request again with its own key.
    process, base_url = start_server(database_url, port=port)
    try:
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as http:
            replies = await asyncio.gather(*(_retry(http, op, scene.partner) for op in ops))
    finally:
        _stop(process)
    for op, reply in zip(ops, replies, strict=True):
        if op.acked is not None:
            assert reply["id"] == op.acked["id"]  # a replay of what was acknowledged
    reserved = dict(
        raw.execute(
            "SELECT msisdn, count(*) FROM reservations WHERE msisdn = ANY(%s) GROUP BY 1",
            (numbers[:RESERVATIONS],),
        ).fetchall()
    )
    activated = dict(
        raw.execute(
            "SELECT msisdn, count(*) FROM lines WHERE msisdn = ANY(%s) GROUP BY 1", (numbers[RESERVATIONS:],)
        ).fetchall()
    )
    assert reserved == dict.fromkeys(numbers[:RESERVATIONS], 1)
    assert activated == dict.fromkeys(numbers[RESERVATIONS:], 1)
    statuses = dict(
        raw.execute(
            "SELECT status, count(*) FROM numbers WHERE msisdn = ANY(%s) GROUP BY 1", (numbers,)
        ).fetchall()
    )
    assert statuses == {"reserved": RESERVATIONS, "in_use": ACTIVATIONS}
    assert time.monotonic() - started < 60
