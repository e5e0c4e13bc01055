"""Block allocation: host/region/status rules, lowest free H-code, live counts, no overlap ever."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from mvno_core.numbers.grading import grade_of
from tests import factories
from tests.factories import assert_problem


async def test_allocate_creates_10000_graded_numbers(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    mvno = await factories.create_mvno(client, operator)
    response = await client.post(
        f"/v1/mvnos/{mvno['id']}/blocks",
        json={"segment": "165", "province": "44", "city": "深圳"},
        headers=operator,
    )
    assert response.status_code == 201, response.text
    block = response.json()
    assert block["prefix"].startswith("165")
    assert len(block["prefix"]) == 7
    assert block["host"] == "CMCC"
    assert block["province_name"] == "广东省"
    assert block["city"] == "深圳"
    assert block["size"] == 10000
    assert block["counts"] == {"available": 10000, "reserved": 0, "in_use": 0, "quarantined": 0}
    rows = raw.execute(
        "SELECT msisdn, grade FROM numbers WHERE block_prefix = %s ORDER BY msisdn", (block["prefix"],)
    ).fetchall()
    assert len(rows) == 10000
    assert rows[0][0] == block["prefix"] + "0000"
    assert rows[-1][0] == block["prefix"] + "9999"
    assert all(grade == grade_of(msisdn).value for msisdn, grade in rows)
    fetched = await client.get(f"/v1/blocks/{block['id']}", headers=operator)
    assert fetched.json() == block


async def test_lowest_free_h_code_is_taken(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    mvno = await factories.create_mvno(client, operator)
    taken = {r[0] for r in raw.execute("SELECT prefix FROM blocks WHERE segment = '1706'").fetchall()}
    expected = next(str(p) for p in range(1706000, 1707000) if str(p) not in taken)
    block = await factories.allocate(client, operator, mvno["id"], segment="1706")
    assert block["prefix"] == expected
    following = await factories.allocate(client, operator, mvno["id"], segment="1706")
    assert int(following["prefix"]) > int(expected)


async def test_explicit_prefix_and_its_errors(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, mvno["id"], segment="167", prefix="1679876")
    assert block["prefix"] == "1679876"
    taken = await client.post(
        f"/v1/mvnos/{mvno['id']}/blocks",
        json={"segment": "167", "province": "11", "prefix": "1679876"},
        headers=operator,
    )
    assert_problem(taken, 409, "block_unavailable")
    outside = await client.post(
        f"/v1/mvnos/{mvno['id']}/blocks",
        json={"segment": "167", "province": "11", "prefix": "1710001"},
        headers=operator,
    )
    assert_problem(outside, 409, "block_unavailable")


async def test_host_mismatch(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator, hosts=["CMCC"])
    response = await client.post(
        f"/v1/mvnos/{mvno['id']}/blocks", json={"segment": "1700", "province": "11"}, headers=operator
    )
    assert_problem(response, 422, "host_mismatch")


async def test_region_not_licensed(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator, licensed_provinces=["11"])
    response = await client.post(
        f"/v1/mvnos/{mvno['id']}/blocks", json={"segment": "171", "province": "65"}, headers=operator
    )
    assert_problem(response, 422, "region_not_licensed")


async def test_restricted_mvno_gets_no_blocks(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator)
    await client.post(f"/v1/mvnos/{mvno['id']}/restrict", json={"reason": "rectify"}, headers=operator)
    response = await client.post(
        f"/v1/mvnos/{mvno['id']}/blocks", json={"segment": "171", "province": "11"}, headers=operator
    )
    assert_problem(response, 409, "mvno_not_active")


@pytest.mark.parametrize(
    "body",
    [
        {"segment": "170", "province": "11"},
        {"segment": "1710", "province": "11"},
        {"segment": "171", "province": "00"},
        {"segment": "171", "province": "11", "prefix": "171000"},
        {"segment": "171", "province": "11", "size": 5},
    ],
)
async def test_invalid_block_bodies_are_422(
    client: httpx.AsyncClient, operator: dict[str, str], body: dict
) -> None:  # type: ignore[type-arg]
    mvno = await factories.create_mvno(client, operator)
    assert_problem(
        await client.post(f"/v1/mvnos/{mvno['id']}/blocks", json=body, headers=operator),
        422,
        "validation_error",
    )


async def test_exhausted_segment(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    """1709 is used by this test only: fill every free H-code by raw SQL, then ask for one more."""
    mvno = await factories.create_mvno(client, operator)
    raw.execute(
        "INSERT INTO blocks (id, prefix, segment, host, province, mvno_id, status, size, allocated_at) "
        "SELECT 'blk_fill_' || p, p::text, '1709', 'CUCC', '11', %s, 'active', 10000, now() "
        "FROM generate_series(1709000, 1709999) p ON CONFLICT (prefix) DO NOTHING",
        (mvno["id"],),
    )
    response = await client.post(
        f"/v1/mvnos/{mvno['id']}/blocks", json={"segment": "1709", "province": "11"}, headers=operator
    )
    assert_problem(response, 409, "block_unavailable")


async def test_concurrent_allocations_get_distinct_blocks(
    client: httpx.AsyncClient, operator: dict[str, str], conninfo: str
) -> None:
    mvno = await factories.create_mvno(client, operator)
    # Barrier: hold the segment's allocation lock until all four requests wait for it.
    async with await psycopg.AsyncConnection.connect(conninfo) as holder:
        await holder.execute("SELECT pg_advisory_xact_lock(3, hashtext('1705'))")
        tasks = [
            asyncio.create_task(
                client.post(
                    f"/v1/mvnos/{mvno['id']}/blocks",
                    json={"segment": "1705", "province": "11"},
                    headers=operator,
                )
            )
            for _ in range(4)
        ]
        await factories.wait_for_lock_waiters(conninfo, 4)
        await holder.rollback()
    responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json()["prefix"] for r in responses}) == 4


async def test_live_counts_follow_reservations(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    mvno = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, mvno["id"], segment="165")
    for suffix in ("0001", "0002"):
        r = await client.post("/v1/reservations", json={"msisdn": block["prefix"] + suffix}, headers=operator)
        assert r.status_code == 201
    raw.execute("UPDATE numbers SET status = 'quarantined' WHERE msisdn = %s", (block["prefix"] + "0003",))
    counts = (await client.get(f"/v1/blocks/{block['id']}", headers=operator)).json()["counts"]
    assert counts == {"available": 9997, "reserved": 2, "in_use": 0, "quarantined": 1}
    listed = (await client.get("/v1/blocks", params={"mvno_id": mvno["id"]}, headers=operator)).json()[
        "items"
    ]
    assert [b["counts"] for b in listed] == [counts]


async def test_block_filters_and_partner_404(
    client: httpx.AsyncClient, operator: dict[str, str], partner: dict[str, str], mvno: dict[str, object]
) -> None:
    other = await factories.create_mvno(client, operator)
    mine = await factories.allocate(client, operator, str(mvno["id"]), segment="165", province="31")
    theirs = await factories.allocate(client, operator, other["id"], segment="165", province="31")
    found = (
        await client.get("/v1/blocks", params={"segment": "165", "province": "31"}, headers=partner)
    ).json()
    assert [b["id"] for b in found["items"]] == [mine["id"]]
    assert_problem(await client.get(f"/v1/blocks/{theirs['id']}", headers=partner), 404, "not_found")
    assert (await client.get(f"/v1/blocks/{mine['id']}", headers=partner)).status_code == 200


class TestOverlapIsImpossibleEvenByRawSql:
    """The database, not Python, guarantees blocks never overlap and numbers stay inside their block."""

    @pytest.fixture
    async def block(self, client: httpx.AsyncClient, operator: dict[str, str]) -> dict:  # type: ignore[type-arg]
        mvno = await factories.create_mvno(client, operator)
        return await factories.allocate(client, operator, mvno["id"], segment="165")

    def test_same_prefix_twice(self, raw: psycopg.Connection, block: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(psycopg.errors.UniqueViolation):
            raw.execute(
                "INSERT INTO blocks (id, prefix, segment, host, province, mvno_id, status, size, "
                "allocated_at) "
                "VALUES ('blk_dup', %s, '165', 'CMCC', '11', %s, 'active', 10000, now())",
                (block["prefix"], block["mvno_id"]),
            )

    @pytest.mark.parametrize(
        ("prefix", "segment", "host", "size"),
        [
            ("16500", "165", "CMCC", 10000),  # not a 7-digit H-code: would cover 100 blocks
            ("1712345", "165", "CMCC", 10000),  # prefix outside its segment
            ("1659999", "165", "CUCC", 10000),  # host other than the segment's
            ("1659998", "165", "CMCC", 20000),  # a block is exactly 10,000 numbers
        ],
    )
    def test_malformed_blocks(
        self,
        raw: psycopg.Connection,
        block: dict,
        prefix: str,
        segment: str,
        host: str,
        size: int,  # type: ignore[type-arg]
    ) -> None:
        with pytest.raises((psycopg.errors.CheckViolation, psycopg.errors.ForeignKeyViolation)):
            raw.execute(
                "INSERT INTO blocks (id, prefix, segment, host, province, mvno_id, status, size, "
                "allocated_at) "
                "VALUES ('blk_bad', %s, %s, %s, '11', %s, 'active', %s, now())",
                (prefix, segment, host, block["mvno_id"], size),
            )

    def test_number_outside_any_block(self, raw: psycopg.Connection, block: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            raw.execute(
                "INSERT INTO numbers (msisdn, status, grade) VALUES ('16299999999', 'available', 'standard')"
            )

    def test_number_twice(self, raw: psycopg.Connection, block: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(psycopg.errors.UniqueViolation):
            raw.execute(
                "INSERT INTO numbers (msisdn, status, grade) VALUES (%s, 'available', 'standard')",
                (block["prefix"] + "0000",),
            )

    def test_number_cannot_be_moved_to_another_block(self, raw: psycopg.Connection, block: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(psycopg.errors.GeneratedAlways):
            raw.execute(
                "UPDATE numbers SET block_prefix = '1650000' WHERE msisdn = %s", (block["prefix"] + "0000",)
            )
