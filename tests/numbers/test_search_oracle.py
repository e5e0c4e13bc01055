"""Search and claims against a brute-force oracle over mixed data: several blocks and MVNOs, every
status, lapsed and live reservations, random filters, patterns and page sizes (Hypothesis).

Segments 1704, 1707 and 1708 belong to this module alone, so the oracle knows every number in scope.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mvno_core.numbers.patterns import matches, parse
from tests import factories

SEGMENTS = ("1704", "1707", "1708")


@dataclass(frozen=True, slots=True)
class Row:
    msisdn: str
    status: str
    reserved_until: datetime | None
    grade: str
    mvno_id: str
    segment: str
    province: str


@dataclass(frozen=True, slots=True)
class World:
    mvnos: tuple[str, str]
    rows: tuple[Row, ...]

    def effective_status(self, row: Row, now: datetime) -> str:
        if row.status == "reserved" and row.reserved_until is not None and row.reserved_until <= now:
            return "available"
        return row.status

    def expected(self, filters: dict[str, str], now: datetime) -> list[str]:
        found = []
        for row in self.rows:
            if any(
                filters.get(key) not in (None, getattr(row, key))
                for key in ("mvno_id", "segment", "province", "grade")
            ):
                continue
            if "status" in filters and self.effective_status(row, now) != filters["status"]:
                continue
            if "pattern" in filters and not matches(filters["pattern"], row.msisdn):
                continue
            found.append(row.msisdn)
        return sorted(found)


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient, operator: dict[str, str], conninfo: str, clock: Any) -> World:
    one = await factories.create_mvno(client, operator)
    two = await factories.create_mvno(client, operator)
    # Interleaved ownership, two provinces, three segments; the second MVNO holds the lowest prefixes.
    plan = [
        (two, "1704", "31"),
        (one, "1704", "11"),
        (two, "1707", "11"),
        (one, "1707", "31"),
        (one, "1708", "11"),
        (two, "1708", "31"),
    ]
    for mvno, segment, province in plan:
        await factories.allocate(client, operator, mvno["id"], segment=segment, province=province)
    now = clock.now()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        # Whole runs of taken numbers (as real life makes them) plus scattered ones, and reservations
        # both live (+1 h) and lapsed (-1 h).
        conn.execute(
            """
            UPDATE numbers n SET
                status = v.status,
                reservation_id = CASE WHEN v.status = 'reserved' THEN 'rsv_oracle' END,
                reserved_until = CASE WHEN v.status = 'reserved' THEN v.until END
            FROM (
                SELECT msisdn,
                    CASE WHEN substr(msisdn, 8, 1) IN ('0', '1') THEN 'in_use'
                         WHEN r < 0.10 THEN 'in_use'
                         WHEN r < 0.15 THEN 'quarantined'
                         WHEN r < 0.22 THEN 'reserved'
                         ELSE 'available' END AS status,
                    CASE WHEN random() < 0.5 THEN %(now)s + interval '1 hour'
                         ELSE %(now)s - interval '1 hour' END AS until
                FROM (SELECT msisdn, random() AS r FROM numbers
                      WHERE left(msisdn, 4) = ANY(%(segments)s)) s
            ) v
            WHERE n.msisdn = v.msisdn
            """,
            {"now": now, "segments": list(SEGMENTS)},
        )
        rows = conn.execute(
            "SELECT n.msisdn, n.status, n.reserved_until, n.grade, b.mvno_id, b.segment, b.province "
            "FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix WHERE b.segment = ANY(%s)",
            (list(SEGMENTS),),
        ).fetchall()
    return World(mvnos=(one["id"], two["id"]), rows=tuple(Row(*r) for r in rows))


def _pattern() -> st.SearchStrategy[str]:
    token = st.sampled_from(["?", "*", "0", "1", "4", "7", "8", "88", "170", "1707", "888"])
    return st.lists(token, min_size=1, max_size=6).map("".join).filter(_valid)


def _valid(raw: str) -> bool:
    try:
        parse(raw)
    except Exception:
        return False
    return True


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_search_matches_the_oracle(
    client: httpx.AsyncClient, operator: dict[str, str], world: World, clock: Any, data: st.DataObject
) -> None:
    filters: dict[str, str] = {}
    scope = data.draw(st.sampled_from(["mvno0", "mvno1", "segment"]))
    if scope == "segment":
        filters["segment"] = data.draw(st.sampled_from(SEGMENTS))
    else:
        filters["mvno_id"] = world.mvnos[int(scope[-1])]
        if data.draw(st.booleans()):
            filters["segment"] = data.draw(st.sampled_from(SEGMENTS))
    for key, choices in (
        ("status", ["available", "reserved", "in_use", "quarantined"]),
        ("province", ["11", "31"]),
        ("grade", ["standard", "premium"]),
    ):
        if data.draw(st.booleans()):
            filters[key] = data.draw(st.sampled_from(choices))
    if data.draw(st.booleans()):
        filters["pattern"] = data.draw(_pattern())
    limit = data.draw(st.sampled_from([1, 3, 20, 500]))

    expected = world.expected(filters, clock.now())
    items, cursor = await factories.walk_pages(
        client, "/v1/numbers", {**filters, "limit": str(limit)}, operator, max_pages=5
    )
    seen = [n["msisdn"] for n in items]
    assert seen == expected[: len(seen)], filters
    assert (cursor is None) == (len(seen) == len(expected)), filters


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_claim_takes_the_lowest_match_and_locks_nothing_else(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    world: World,
    clock: Any,
    conninfo: str,
    data: st.DataObject,
) -> None:
    """The row pick of an "any number" claim returns the oracle's lowest match, run in a transaction
    that is rolled back: it must hold exactly one row lock (or none), never another number's."""
    from mvno_core.numbers.repository import NumberQuery

    mvno_id = world.mvnos[data.draw(st.integers(0, 1))]
    pattern = data.draw(st.none() | _pattern())
    province = data.draw(st.none() | st.sampled_from(["11", "31"]))
    query = NumberQuery(
        mvno_id=mvno_id,
        status="available",
        province=province,
        pattern=parse(pattern) if pattern else None,
        active_blocks_only=True,
    )
    filters = {"mvno_id": mvno_id, "status": "available"}
    if province:
        filters["province"] = province
    if pattern:
        filters["pattern"] = pattern
    now = clock.now()
    expected = world.expected(filters, now)[:1]
    statement = query.claim_statement().replace("%", "%%")
    for name in sorted(query.params, key=len, reverse=True):
        statement = statement.replace(f":{name}", f"%({name})s")
    statement = statement.replace(":now", "%(now)s")
    with psycopg.connect(conninfo) as claimer, psycopg.connect(conninfo, autocommit=True) as probe:
        picked = [r[0] for r in claimer.execute(statement, {**query.params, "now": now}).fetchall()]
        # While the claim's transaction is open, every other claimable number of the MVNO is free.
        with probe.transaction(force_rollback=True):
            free = probe.execute(
                "SELECT count(*) FROM (SELECT n.msisdn FROM numbers n "
                "JOIN blocks b ON b.prefix = n.block_prefix "
                "WHERE b.mvno_id = %s AND n.status IN ('available', 'reserved') "
                "FOR UPDATE OF n SKIP LOCKED) s",
                (mvno_id,),
            ).fetchone()
            total = probe.execute(
                "SELECT count(*) FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix "
                "WHERE b.mvno_id = %s AND n.status IN ('available', 'reserved')",
                (mvno_id,),
            ).fetchone()
        claimer.rollback()
    assert picked == expected, (filters, statement)
    assert free is not None
    assert total is not None
    assert total[0] - free[0] == len(picked), "the claim locked rows it did not take"


async def test_claims_lock_only_the_number_they_take(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection, conninfo: str
) -> None:
    """Regression: a block-driven claim must not lock the next block's number, and a pattern-driven
    claim must not lock other MVNOs' matches; otherwise a concurrent claim answers 409 needlessly."""
    x = await factories.create_mvno(client, operator)
    y = await factories.create_mvno(client, operator)
    x_blocks = [await factories.allocate(client, operator, x["id"], segment="1707") for _ in range(2)]
    y_block = await factories.allocate(client, operator, y["id"], segment="1707")
    for block in (*x_blocks, y_block):
        raw.execute(
            "UPDATE numbers SET status = 'in_use' WHERE block_prefix = %s AND msisdn <> %s",
            (block["prefix"], block["prefix"] + "8888"),
        )
    candidates = [b["prefix"] + "8888" for b in (*x_blocks, y_block)]
    for body in ({"criteria": {}}, {"criteria": {"pattern": "*8888"}}):
        # Stall X's first claim after its pick (its event insert waits on this lock), then look.
        async with await psycopg.AsyncConnection.connect(conninfo) as holder:
            await holder.execute("LOCK TABLE events IN SHARE MODE")
            first = asyncio.create_task(
                client.post("/v1/reservations", json={"mvno_id": x["id"], **body}, headers=operator)
            )
            await factories.wait_for_lock_waiters(conninfo, 1)
            async with await psycopg.AsyncConnection.connect(conninfo) as probe:
                cursor = await probe.execute(
                    "SELECT msisdn FROM numbers WHERE msisdn = ANY(%s) FOR UPDATE SKIP LOCKED", (candidates,)
                )
                free = {r[0] for r in await cursor.fetchall()}
                await probe.rollback()
            locked = sorted(set(candidates) - free)
            assert len(locked) == 1, locked
            assert locked[0].startswith(x_blocks[0]["prefix"]) or locked[0].startswith(x_blocks[1]["prefix"])
            # A second X claim and a Y claim both find a free number while the first is in flight.
            second = asyncio.create_task(
                client.post("/v1/reservations", json={"mvno_id": x["id"], **body}, headers=operator)
            )
            other = asyncio.create_task(
                client.post("/v1/reservations", json={"mvno_id": y["id"], **body}, headers=operator)
            )
            await factories.wait_for_lock_waiters(conninfo, 3)
            await holder.rollback()
        results = [await first, await second, await other]
        assert [r.status_code for r in results] == [201, 201, 201], [r.text for r in results]
        taken = {r.json()["msisdn"] for r in results}
        assert taken == set(candidates)
        # Free them again for the next round.
        for r in results:
            assert (
                await client.delete(f"/v1/reservations/{r.json()['id']}", headers=operator)
            ).status_code == 204


def _loose_pattern() -> st.SearchStrategy[str]:
    # Digits that meet across the block boundary too: the test's prefixes end in 0, 1, 2 ….
    token = st.sampled_from(["?", "*", "0", "1", "2", "00", "10", "01", "7", "88", "888"])
    return st.lists(token, min_size=2, max_size=5).map(lambda t: "*" + "".join(t) + "*").filter(_valid)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_pattern_only_search_matches_the_oracle(
    client: httpx.AsyncClient, operator: dict[str, str], world: World, clock: Any, data: st.DataObject
) -> None:
    """Patterns as the only filter: the block walk then searches only where the pattern can match
    (``patterns.block_cover``), so every page must still be exactly the oracle's."""
    filters = {"mvno_id": world.mvnos[data.draw(st.integers(0, 1))], "pattern": data.draw(_loose_pattern())}
    if data.draw(st.booleans()):
        filters["segment"] = data.draw(st.sampled_from(SEGMENTS))
    limit = data.draw(st.sampled_from([1, 3, 20, 500]))

    expected = world.expected(filters, clock.now())
    items, cursor = await factories.walk_pages(
        client, "/v1/numbers", {**filters, "limit": str(limit)}, operator, max_pages=5
    )
    seen = [n["msisdn"] for n in items]
    assert seen == expected[: len(seen)], filters
    assert (cursor is None) == (len(seen) == len(expected)), filters
