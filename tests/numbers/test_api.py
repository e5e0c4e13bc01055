"""Numbers: reads, search (with a brute-force oracle for patterns), the suffix index, recycled check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from mvno_core.kernel.db import Database
from mvno_core.numbers.grading import GRADE_SQL, grade_of
from mvno_core.numbers.patterns import matches, parse
from mvno_core.numbers.repository import NumberQuery
from tests import factories
from tests.factories import assert_problem


def test_grade_sql_agrees_with_python_on_every_suffix(raw: psycopg.Connection) -> None:
    rows = raw.execute(f"SELECT s, {GRADE_SQL} FROM generate_series(0, 9999) AS s ORDER BY s").fetchall()
    assert len(rows) == 10000
    mismatches = [s for s, grade in rows if grade != grade_of(f"1710000{s:04d}").value]
    assert mismatches == []
    assert sum(1 for _, g in rows if g == "premium") > 100  # the rule is not vacuous


async def test_get_number_and_input_forms(
    client: httpx.AsyncClient, operator: dict[str, str], partner: dict[str, str], mvno: dict[str, Any]
) -> None:
    block = await factories.allocate(client, operator, mvno["id"], segment="1703", province="31", city="上海")
    msisdn = block["prefix"] + "8888"
    expected = {
        "msisdn": msisdn,
        "status": "available",
        "grade": "premium",
        "block_id": block["id"],
        "mvno_id": mvno["id"],
        "host": "CMCC",
        "segment": "1703",
        "province": "31",
        "province_name": "上海市",
        "city": "上海",
        "line_id": None,
        "reserved_until": None,
        "quarantine_until": None,
        "reissued_at": None,
    }
    for form in (msisdn, f"+86{msisdn}", f"86 {msisdn[:3]}-{msisdn[3:7]}-{msisdn[7:]}"):
        response = await client.get(f"/v1/numbers/{form}", headers=partner)
        assert response.status_code == 200, (form, response.text)
        assert response.json() == expected


async def test_number_not_in_a_block_and_other_mvno_are_404(
    client: httpx.AsyncClient, operator: dict[str, str], partner: dict[str, str]
) -> None:
    assert_problem(await client.get("/v1/numbers/16299999999", headers=operator), 404, "not_found")
    other = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, other["id"], segment="165")
    assert_problem(await client.get(f"/v1/numbers/{block['prefix']}0001", headers=partner), 404, "not_found")
    assert (await client.get(f"/v1/numbers/{block['prefix']}0001", headers=operator)).status_code == 200


async def test_search_filters(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator)
    bj = await factories.allocate(client, operator, mvno["id"], segment="165", province="11")
    gd = await factories.allocate(client, operator, mvno["id"], segment="1703", province="44")
    await client.post("/v1/reservations", json={"msisdn": gd["prefix"] + "0000"}, headers=operator)

    async def search(**params: str) -> list[dict[str, Any]]:
        page = await client.get(
            "/v1/numbers", params={"mvno_id": mvno["id"], "limit": "500", **params}, headers=operator
        )
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]
        return items

    in_gd = await search(province="44", pattern="*000?")
    assert {n["msisdn"] for n in in_gd} == {gd["prefix"] + f"000{d}" for d in range(10)}
    assert {n["province"] for n in in_gd} == {"44"}
    reserved = await search(status="reserved")
    assert [n["msisdn"] for n in reserved] == [gd["prefix"] + "0000"]
    assert reserved[0]["reserved_until"] is not None
    available_in_gd = await search(status="available", province="44", pattern="*000?")
    assert len(available_in_gd) == 9
    premium = await search(grade="premium", segment="165")
    assert premium
    assert all(n["grade"] == "premium" and n["msisdn"].startswith(bj["prefix"]) for n in premium)
    assert len(premium) == sum(
        1 for s in range(10000) if grade_of(f"{bj['prefix']}{s:04d}").value == "premium"
    )
    assert await search(segment="171") == []


async def test_search_paginates_in_msisdn_order(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, mvno["id"], segment="165")
    params = {"mvno_id": mvno["id"], "pattern": f"{block['prefix']}01*", "limit": "30"}
    items, _ = await factories.walk_pages(client, "/v1/numbers", params, operator)
    seen = [n["msisdn"] for n in items]
    assert seen == [f"{block['prefix']}01{i:02d}" for i in range(100)]


@pytest.fixture(scope="module")
async def oracle_block(client: httpx.AsyncClient, operator: dict[str, str]) -> tuple[str, list[str]]:
    mvno = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, mvno["id"], segment="1701", province="11")
    return mvno["id"], [f"{block['prefix']}{s:04d}" for s in range(10000)]


def _patterns(prefix: str) -> st.SearchStrategy[str]:
    """Patterns near the block's numbers (so they match something), with ?, * and digit runs."""
    token = st.one_of(st.sampled_from("0123456789"), st.just("?"), st.just("*"))
    free = st.lists(token, min_size=1, max_size=11).map("".join)
    anchored = st.tuples(st.integers(0, 7), st.lists(token, min_size=0, max_size=6)).map(
        lambda t: prefix[: t[0]] + "*" + "".join(t[1])
    )
    exact = st.lists(st.sampled_from("0123456789?"), min_size=4, max_size=4).map(
        lambda s: prefix + "".join(s)
    )
    return st.one_of(free, anchored, exact).filter(_valid)


def _valid(pattern: str) -> bool:
    try:
        parse(pattern)
    except Exception:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_pattern_search_matches_brute_force_oracle(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    oracle_block: tuple[str, list[str]],
    data: st.DataObject,
) -> None:
    mvno_id, numbers = oracle_block
    pattern = data.draw(_patterns(numbers[0][:7]))
    grade = data.draw(st.sampled_from([None, "standard", "premium"]))
    expected = sorted(n for n in numbers if matches(pattern, n) and grade in (None, grade_of(n).value))
    params = {"mvno_id": mvno_id, "pattern": pattern, "limit": "500", **({"grade": grade} if grade else {})}
    response = await client.get("/v1/numbers", params=params, headers=operator)
    assert response.status_code == 200, (pattern, response.text)
    page = response.json()
    assert [n["msisdn"] for n in page["items"]] == expected[:500], (pattern, grade)
    assert (page["next_cursor"] is not None) == (len(expected) > 500), (pattern, grade)


async def test_suffix_search_uses_the_reverse_index(db: Database) -> None:
    """The service's own statement for *8888 range-scans reverse(msisdn) (the benchmark shows it on 1M)."""
    query = NumberQuery(pattern=parse("*8888"))
    assert query.pattern_driven
    statement = f"EXPLAIN {query.statement(limit=50)}"
    async with db.transaction() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await session.execute(text(statement), {**query.params, "now": datetime.now(UTC)})
        plan = "\n".join(r[0] for r in rows)
    assert "ix_numbers_msisdn_reversed" in plan, plan


async def test_block_driven_search_walks_only_the_mvnos_blocks(db: Database) -> None:
    """Without a selective pattern, a partner's "available" search starts from its own blocks and
    range-scans the claimable index, whatever other MVNOs hold."""
    query = NumberQuery(mvno_id="mvno_x", status="available", pattern=parse("*66"))
    assert not query.pattern_driven
    statement = f"EXPLAIN {query.statement(limit=50)}"
    async with db.transaction() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await session.execute(text(statement), {**query.params, "now": datetime.now(UTC)})
        plan = "\n".join(r[0] for r in rows)
    assert "ix_blocks_mvno_id_prefix" in plan, plan
    assert "ix_numbers_claimable" in plan, plan


async def test_changes_since(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    mvno = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, mvno["id"], segment="165")
    msisdn = block["prefix"] + "1234"

    async def changes(since: str) -> dict[str, Any]:
        response = await client.get(
            f"/v1/numbers/{msisdn}/changes", params={"since": since}, headers=operator
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    fresh = await changes("2020-01-01")
    assert fresh == {"msisdn": msisdn, "since": "2020-01-01", "changed": False, "last_cancelled_at": None}
    # Cancellation is a later stage; it stamps last_cancelled_at on the number. 2026-03-31 17:00 UTC is
    # already 2026-04-01 01:00 in China, so it counts as a change "since 2026-04-01".
    raw.execute("UPDATE numbers SET last_cancelled_at = '2026-03-31T17:00:00Z' WHERE msisdn = %s", (msisdn,))
    before = await changes("2026-03-01")
    assert before["changed"] is True
    assert before["last_cancelled_at"].startswith("2026-03-31T17:00:00")
    assert (await changes("2026-04-01"))["changed"] is True
    assert (await changes("2026-04-02"))["changed"] is False
    assert_problem(
        await client.get(f"/v1/numbers/{msisdn}/changes", headers=operator), 422, "validation_error"
    )
    assert_problem(
        await client.get(f"/v1/numbers/{msisdn}/changes", params={"since": "March"}, headers=operator),
        422,
        "validation_error",
    )


@pytest.mark.parametrize("pattern", [None, "*7", "*0?7", "*8888", "*5201*"])
async def test_pages_across_blocks_match_a_brute_force_listing(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection, pattern: str | None
) -> None:
    """Both query shapes, paged across several blocks with taken numbers in between, list exactly the
    available numbers of the MVNO in order, each once."""
    mvno = await factories.create_mvno(client, operator)
    blocks = [await factories.allocate(client, operator, mvno["id"], segment="1702") for _ in range(3)]
    first, second, third = (b["prefix"] for b in blocks)
    # The whole middle block and the upper half of the first are taken.
    raw.execute("UPDATE numbers SET status = 'in_use' WHERE block_prefix = %s", (second,))
    raw.execute(
        "UPDATE numbers SET status = 'quarantined' WHERE msisdn >= %s AND block_prefix = %s",
        (first + "5000", first),
    )
    expected = [
        row[0]
        for row in raw.execute(
            "SELECT msisdn FROM numbers WHERE block_prefix = ANY(%s) AND status = 'available' "
            "ORDER BY msisdn",
            ([first, second, third],),
        ).fetchall()
        if pattern is None or matches(pattern, row[0])
    ]
    params = {"mvno_id": mvno["id"], "status": "available", "limit": "500"}
    if pattern:
        params["pattern"] = pattern
    items, cursor = await factories.walk_pages(client, "/v1/numbers", params, operator)
    seen = [n["msisdn"] for n in items]
    assert cursor is None
    assert seen == expected
    assert any(n.startswith(third) for n in seen)
