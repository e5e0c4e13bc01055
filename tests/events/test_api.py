"""Event feed: written with each mutation, scoped per partner, and never skips a late commit."""

from __future__ import annotations

import json
import uuid

import httpx
import psycopg

from mvno_core.events.sequencer import position_pending
from mvno_core.kernel.db import Database
from mvno_core.kernel.pagination import encode_cursor
from tests import factories
from tests.factories import assert_problem


async def drain(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    cursor: str | None,
    db: Database | None = None,
    **params: str,
) -> tuple[list[dict], str]:  # type: ignore[type-arg]
    """Position what is committed (the test app runs no background sequencer), then poll until a poll
    returns nothing and leaves the cursor where it was."""
    if db is not None:
        assert await position_pending(db, 5000) is not None
    items: list[dict] = []  # type: ignore[type-arg]
    while True:
        query = {"limit": "500", **params, **({"after": cursor} if cursor else {})}
        page = (await client.get("/v1/events", params=query, headers=headers)).json()
        items += page["items"]
        assert page["next_cursor"]
        if not page["items"] and page["next_cursor"] == cursor:
            return items, page["next_cursor"]
        cursor = page["next_cursor"]


async def test_mutations_emit_events(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database
) -> None:
    _, cursor = await drain(client, operator, None, db)
    mvno = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, mvno["id"], segment="165")
    items, _ = await drain(client, operator, cursor, db)
    mine = [e for e in items if e["mvno_id"] == mvno["id"]]
    assert [e["type"] for e in mine] == ["mvno.created", "block.allocated"]
    assert mine[1]["subject"] == {"kind": "block", "id": block["id"]}
    assert mine[1]["data"]["prefix"] == block["prefix"]


async def test_types_filter_and_partner_scope(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    partner: dict[str, str],
    mvno: dict[str, object],
    db: Database,
) -> None:
    other = await factories.create_mvno(client, operator)
    await factories.allocate(client, operator, str(mvno["id"]), segment="165")
    seen, _ = await drain(client, partner, None, db)
    assert seen
    assert all(e["mvno_id"] == mvno["id"] for e in seen)
    assert other["id"] not in {e["mvno_id"] for e in seen}
    only_blocks, _ = await drain(client, operator, None, types="block.allocated")
    assert only_blocks
    assert {e["type"] for e in only_blocks} == {"block.allocated"}


def _insert_event(conn: psycopg.Connection, marker: str) -> None:
    conn.execute(
        "INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data) "
        "VALUES (%s, 'test.marker', now(), NULL, 'test', %s, %s)",
        (f"evt_{uuid.uuid4().hex}", marker, json.dumps({"marker": marker})),
    )


async def test_overlapping_transactions_never_lose_an_event(
    client: httpx.AsyncClient, operator: dict[str, str], conninfo: str, db: Database
) -> None:
    """T1 writes first but commits last. A consumer polling in between must not lose T1's event: the
    feed is in the order events became visible, so T1's event comes after T2's, never behind a cursor."""
    _, cursor = await drain(client, operator, None, db)
    first, second = f"early-{uuid.uuid4().hex}", f"late-{uuid.uuid4().hex}"
    with psycopg.connect(conninfo) as t1, psycopg.connect(conninfo, autocommit=True) as t2:
        _insert_event(t1, first)  # T1 wrote first, still open
        _insert_event(t2, second)  # T2 commits at once
        during, cursor = await drain(client, operator, cursor, db)
        # T2's event is served now and the cursor moves past it; T1's is not committed yet.
        assert [e["subject"]["id"] for e in during if e["type"] == "test.marker"] == [second]
        t1.commit()
    after, _ = await drain(client, operator, cursor, db)
    assert [e["subject"]["id"] for e in after if e["type"] == "test.marker"] == [first]


async def test_feed_parameters_are_validated(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    unknown = await client.get("/v1/events", params={"types": "block.allocated,bogus.type"}, headers=operator)
    problem = assert_problem(unknown, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["query", "types"]
    blank = await client.get("/v1/events", params={"types": " , "}, headers=operator)
    assert_problem(blank, 422, "validation_error")
    huge = encode_cursor(10**30)
    assert_problem(
        await client.get("/v1/events", params={"after": huge}, headers=operator), 422, "validation_error"
    )
    bad_after = await client.get("/v1/events", params={"after": "garbage"}, headers=operator)
    assert assert_problem(bad_after, 422, "validation_error")["errors"][0]["loc"] == ["query", "after"]
    # A cursor of the former transaction-id feed (two numbers) cannot be mapped: refused, not misread.
    old = await client.get("/v1/events", params={"after": encode_cursor(812, 3)}, headers=operator)
    assert_problem(old, 422, "validation_error")
    # ?cursor= (the generic list parameter) works like ?after=.
    first = (await client.get("/v1/events", params={"limit": "1"}, headers=operator)).json()
    via_cursor = await client.get(
        "/v1/events", params={"limit": "1", "cursor": first["next_cursor"]}, headers=operator
    )
    via_after = await client.get(
        "/v1/events", params={"limit": "1", "after": first["next_cursor"]}, headers=operator
    )
    assert via_cursor.json() == via_after.json()
    assert via_cursor.json()["items"] != first["items"]
