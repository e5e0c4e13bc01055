"""What the hot path costs and how claims behave under locks: statements per request (counted on the
app's own engine) and "any number" claims that never queue behind each other."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event

from mvno_core.kernel.db import Database
from mvno_core.kernel.lean import LeanPool
from tests import factories


@pytest.fixture
async def block(client: httpx.AsyncClient, operator: dict[str, str], mvno: dict[str, Any]) -> dict[str, Any]:
    return await factories.allocate(client, operator, mvno["id"], segment="165", province="11")


class RoundTrips:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.commits = 0

    @property
    def total(self) -> int:
        return len(self.statements) + self.commits


@contextmanager
def counting(db: Database, lean: LeanPool | None = None) -> Iterator[RoundTrips]:
    """Every statement the app's engine sends, and every COMMIT, while the block runs (and the lean
    lane's, given its pool: it talks to the database over its own connections).

    The test app runs without its lifespan, so no feed sequencer is attached and a transaction that
    wrote events would NOTIFY one in another process; the served app wakes its own, in-process, with no
    statement. A no-op wake-up stands in for it here, so the count is the served app's."""
    seen = RoundTrips()
    engine = db.engine.sync_engine
    db.on_events_committed.append(_in_process_sequencer)

    def on_statement(*args: Any) -> None:
        seen.statements.append(str(args[2]))

    def on_commit(_connection: Any) -> None:
        seen.commits += 1

    def on_lean_statement(sql: str) -> None:
        if sql == "COMMIT":
            seen.commits += 1
        else:
            seen.statements.append(sql)

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    if lean is not None:
        lean.listeners.append(on_lean_statement)
    try:
        yield seen
    finally:
        if lean is not None:
            lean.listeners.remove(on_lean_statement)
        db.on_events_committed.remove(_in_process_sequencer)
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)


def _in_process_sequencer() -> None:
    """What the served app's feed sequencer does on a commit that wrote events: wake (no SQL)."""


async def test_specific_reservation_with_idempotency_key_takes_three_round_trips(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any], db: Database
) -> None:
    # A warm caller: the key was authenticated a moment ago (revocation is still seen within 1 s).
    assert (await client.get("/v1/segments", headers=partner)).status_code == 200
    msisdn = block["prefix"] + "0101"
    with counting(db) as seen:
        response = await client.post(
            "/v1/reservations",
            json={"msisdn": msisdn},
            headers={**partner, "Idempotency-Key": "rt-specific-1"},
        )
    assert response.status_code == 201, response.text
    # Key lock + lookup; the claim with its reservation, audit entry, event and key record; COMMIT.
    assert seen.total <= 3, seen.statements
    assert seen.commits == 1
    # Everything the response promises was written.
    with counting(db) as replay_seen:
        replay = await client.post(
            "/v1/reservations",
            json={"msisdn": msisdn},
            headers={**partner, "Idempotency-Key": "rt-specific-1"},
        )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == response.content
    assert replay.headers["location"] == response.headers["location"]
    assert replay_seen.total <= 2


async def test_any_number_reservation_round_trips(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any], db: Database
) -> None:
    assert (await client.get("/v1/segments", headers=partner)).status_code == 200
    with counting(db) as seen:
        response = await client.post(
            "/v1/reservations", json={"criteria": {"segment": "165"}}, headers=partner
        )
    assert response.status_code == 201, response.text
    # The claim (the response depends on the number taken), then its journal, then COMMIT.
    assert seen.total <= 3, seen.statements


async def test_journal_and_reservation_are_written_by_the_one_statement(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any], raw: psycopg.Connection
) -> None:
    msisdn = block["prefix"] + "0102"
    response = await client.post(
        "/v1/reservations", json={"msisdn": msisdn}, headers={**partner, "Idempotency-Key": "rt-specific-2"}
    )
    reservation_id = response.json()["id"]
    audit = raw.execute(
        "SELECT action, data->>'msisdn' FROM audit_entries WHERE subject_id = %s", (reservation_id,)
    ).fetchall()
    assert audit == [("reservation.created", msisdn)]
    events = raw.execute(
        "SELECT type, data->>'reservation_id' FROM events WHERE subject_id = %s", (reservation_id,)
    ).fetchall()
    assert events == [("number.reserved", reservation_id)]
    stored = raw.execute(
        "SELECT status_code, response_body FROM idempotency_keys WHERE key = 'rt-specific-2'"
    ).fetchone()
    assert stored is not None
    assert stored[0] == 201
    assert bytes(stored[1]) == response.content


async def test_failed_claim_writes_no_journal_and_no_key(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any], raw: psycopg.Connection
) -> None:
    msisdn = block["prefix"] + "0103"
    first = await client.post("/v1/reservations", json={"msisdn": msisdn}, headers=partner)
    assert first.status_code == 201
    before = raw.execute("SELECT count(*) FROM audit_entries").fetchone()
    second = await client.post(
        "/v1/reservations", json={"msisdn": msisdn}, headers={**partner, "Idempotency-Key": "rt-taken"}
    )
    factories.assert_problem(second, 409, "number_unavailable")
    assert raw.execute("SELECT count(*) FROM audit_entries").fetchone() == before
    assert raw.execute("SELECT count(*) FROM idempotency_keys WHERE key = 'rt-taken'").fetchone() == (0,)


async def test_any_number_claim_skips_a_locked_number_without_waiting(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any], conninfo: str
) -> None:
    """Hold the lowest free number locked in another transaction: the next claim must take the number
    after it at once (``SKIP LOCKED``), not queue behind the lock."""
    lowest = block["prefix"] + "0000"
    async with await psycopg.AsyncConnection.connect(conninfo) as holder:
        await holder.execute("SELECT 1 FROM numbers WHERE msisdn = %s FOR UPDATE", (lowest,))
        response = await asyncio.wait_for(
            client.post(
                "/v1/reservations",
                json={"criteria": {"segment": "165", "province": "11"}},
                headers=partner,
            ),
            timeout=5,
        )
        assert response.status_code == 201, response.text
        assert response.json()["msisdn"] == block["prefix"] + "0001"
        await holder.rollback()
    after = await client.post(
        "/v1/reservations", json={"criteria": {"segment": "165", "province": "11"}}, headers=partner
    )
    assert after.json()["msisdn"] == lowest  # released: the lowest is taken next
