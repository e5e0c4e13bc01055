"""Reservations: specific and any-number claims, races, release, lazy expiry and the sweeper."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from tests import factories
from tests.factories import assert_problem


@pytest.fixture
async def block(client: httpx.AsyncClient, operator: dict[str, str], mvno: dict[str, Any]) -> dict[str, Any]:
    return await factories.allocate(client, operator, mvno["id"], segment="165", province="11")


async def test_reserve_specific_number(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any], mvno: dict[str, Any]
) -> None:
    msisdn = block["prefix"] + "0042"
    response = await client.post(
        "/v1/reservations", json={"msisdn": f"+86 {msisdn}", "ttl_seconds": 600}, headers=partner
    )
    assert response.status_code == 201, response.text
    reservation = response.json()
    assert reservation["id"].startswith("rsv_")
    assert reservation["msisdn"] == msisdn
    assert reservation["mvno_id"] == mvno["id"]
    assert reservation["status"] == "active"
    assert response.headers["location"] == f"/v1/reservations/{reservation['id']}"
    number = (await client.get(f"/v1/numbers/{msisdn}", headers=partner)).json()
    assert number["status"] == "reserved"
    assert number["reserved_until"] == reservation["expires_at"]
    again = await client.post("/v1/reservations", json={"msisdn": msisdn}, headers=partner)
    assert_problem(again, 409, "number_unavailable")


async def test_reserve_any_matching_number(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/reservations",
        json={"criteria": {"pattern": "*77", "province": "11", "segment": "165"}},
        headers=partner,
    )
    assert response.status_code == 201, response.text
    assert response.json()["msisdn"] == block["prefix"] + "0077"  # lowest match first
    premium = await client.post("/v1/reservations", json={"criteria": {"grade": "premium"}}, headers=partner)
    assert premium.json()["msisdn"] == block["prefix"] + "0000"
    nothing = await client.post("/v1/reservations", json={"criteria": {"province": "44"}}, headers=partner)
    assert_problem(nothing, 409, "number_unavailable")


async def test_cannot_reserve_another_mvnos_number(
    client: httpx.AsyncClient, operator: dict[str, str], partner: dict[str, str]
) -> None:
    other = await factories.create_mvno(client, operator)
    theirs = await factories.allocate(client, operator, other["id"], segment="165")
    response = await client.post(
        "/v1/reservations", json={"msisdn": theirs["prefix"] + "0001"}, headers=partner
    )
    assert_problem(response, 409, "number_unavailable")
    named = await client.post(
        "/v1/reservations", json={"mvno_id": other["id"], "criteria": {}}, headers=partner
    )
    assert_problem(named, 404, "not_found")
    # The operator reserving for an MVNO cannot take another MVNO's number either.
    mine = await factories.create_mvno(client, operator)
    crossed = await client.post(
        "/v1/reservations",
        json={"mvno_id": mine["id"], "msisdn": theirs["prefix"] + "0001"},
        headers=operator,
    )
    assert_problem(crossed, 409, "number_unavailable")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"msisdn": "17100000001", "criteria": {}},
        {"msisdn": "123"},
        {"criteria": {}, "ttl_seconds": 59},
        {"criteria": {}, "ttl_seconds": 86_401},
        {"criteria": {"pattern": "abc"}},
        {"criteria": {"segment": "999"}},
        {"criteria": {"colour": "gold"}},
    ],
)
async def test_invalid_reservation_bodies_are_422(
    client: httpx.AsyncClient, partner: dict[str, str], body: dict[str, Any]
) -> None:
    assert_problem(await client.post("/v1/reservations", json=body, headers=partner), 422, "validation_error")


async def test_operator_must_name_the_mvno_for_criteria(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    assert_problem(
        await client.post("/v1/reservations", json={"criteria": {}}, headers=operator),
        422,
        "validation_error",
    )


async def test_regulator_cannot_reserve(
    client: httpx.AsyncClient, regulator: dict[str, str], block: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/reservations", json={"msisdn": block["prefix"] + "0001"}, headers=regulator
    )
    assert_problem(response, 403, "forbidden")


async def test_restricted_mvno_cannot_reserve(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    partner: dict[str, str],
    block: dict[str, Any],
    mvno: dict[str, Any],
) -> None:
    await client.post(f"/v1/mvnos/{mvno['id']}/restrict", json={"reason": "rectify"}, headers=operator)
    response = await client.post(
        "/v1/reservations", json={"msisdn": block["prefix"] + "0001"}, headers=partner
    )
    assert_problem(response, 409, "mvno_not_active")


async def test_release_frees_the_number_and_is_retry_safe(
    client: httpx.AsyncClient, partner: dict[str, str], operator: dict[str, str], block: dict[str, Any]
) -> None:
    msisdn = block["prefix"] + "0100"
    reservation = (await client.post("/v1/reservations", json={"msisdn": msisdn}, headers=partner)).json()
    released = await client.delete(f"/v1/reservations/{reservation['id']}", headers=partner)
    assert released.status_code == 204
    assert (await client.get(f"/v1/numbers/{msisdn}", headers=partner)).json()["status"] == "available"
    assert (await client.get(f"/v1/reservations/{reservation['id']}", headers=partner)).json()[
        "status"
    ] == "released"
    assert (await client.delete(f"/v1/reservations/{reservation['id']}", headers=partner)).status_code == 204
    audit = (
        await client.get("/v1/audit", params={"subject_id": reservation["id"]}, headers=operator)
    ).json()["items"]
    assert [e["action"] for e in audit] == ["reservation.created", "reservation.released"]
    retaken = await client.post("/v1/reservations", json={"msisdn": msisdn}, headers=partner)
    assert retaken.status_code == 201


async def test_other_partner_cannot_see_or_release(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    operator: dict[str, str],
    db: Database,
    block: dict[str, Any],
) -> None:
    reservation = (
        await client.post("/v1/reservations", json={"msisdn": block["prefix"] + "0200"}, headers=partner)
    ).json()
    stranger_mvno = await factories.create_mvno(client, operator)
    stranger = factories.bearer(await factories.create_key(db, role="partner", mvno_id=stranger_mvno["id"]))
    assert_problem(
        await client.get(f"/v1/reservations/{reservation['id']}", headers=stranger), 404, "not_found"
    )
    assert_problem(
        await client.delete(f"/v1/reservations/{reservation['id']}", headers=stranger), 404, "not_found"
    )
    assert_problem(await client.delete("/v1/reservations/rsv_nope", headers=partner), 404, "not_found")


async def test_number_is_available_right_after_expiry_before_any_sweep(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    block: dict[str, Any],
    clock: Any,
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    msisdn = block["prefix"] + "0300"
    reservation = (
        await client.post("/v1/reservations", json={"msisdn": msisdn, "ttl_seconds": 60}, headers=partner)
    ).json()
    clock.advance(seconds=61)
    number = (await client.get(f"/v1/numbers/{msisdn}", headers=partner)).json()
    assert number["status"] == "available"
    assert number["reserved_until"] is None
    assert (await client.get(f"/v1/reservations/{reservation['id']}", headers=partner)).json()[
        "status"
    ] == "expired"
    counts = (await client.get(f"/v1/blocks/{block['id']}", headers=partner)).json()["counts"]
    assert counts["reserved"] == 0
    assert counts["available"] == 10000
    # Someone can take it at once. That claim ends the lapsed reservation in its own statement (written
    # down before any sweep), journals its expiry before the new claim, and the sweeper then has nothing
    # to do for this number: the new reservation stays.
    second = await client.post("/v1/reservations", json={"msisdn": msisdn}, headers=partner)
    assert second.status_code == 201
    stored = raw.execute(
        "SELECT status, ended_at FROM reservations WHERE id = %s", (reservation["id"],)
    ).fetchone()
    assert stored is not None
    assert stored[0] == "expired"
    assert stored[1] == datetime.fromisoformat(reservation["expires_at"])
    await sweeper.sweep_once(db, clock, settings)
    assert (await client.get(f"/v1/numbers/{msisdn}", headers=partner)).json()["status"] == "reserved"
    expired_audit = raw.execute(
        "SELECT count(*) FROM audit_entries WHERE subject_id = %s AND action = 'reservation.expired'",
        (reservation["id"],),
    ).fetchone()
    assert expired_audit == (1,)
    # The feed tells the expiry before the new claim (same transaction: insertion order).
    order = raw.execute(
        "SELECT type FROM events WHERE data->>'msisdn' = %s ORDER BY seq", (msisdn,)
    ).fetchall()
    assert [t for (t,) in order] == ["number.reserved", "reservation.expired", "number.reserved"]


async def test_sweeper_frees_numbers_of_lapsed_reservations(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    block: dict[str, Any],
    clock: Any,
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    msisdn = block["prefix"] + "0400"
    await client.post("/v1/reservations", json={"msisdn": msisdn, "ttl_seconds": 60}, headers=partner)
    clock.advance(seconds=120)
    await sweeper.sweep_once(db, clock, settings)
    row = raw.execute("SELECT status, reservation_id FROM numbers WHERE msisdn = %s", (msisdn,)).fetchone()
    assert row == ("available", None)


async def test_twenty_concurrent_claims_of_one_number_one_wins(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    block: dict[str, Any],
    raw: psycopg.Connection,
    conninfo: str,
) -> None:
    msisdn = block["prefix"] + "0500"
    # Barrier: hold the number's row so all 20 requests queue on it, then let them race.
    async with await psycopg.AsyncConnection.connect(conninfo) as holder:
        await holder.execute("SELECT 1 FROM numbers WHERE msisdn = %s FOR UPDATE", (msisdn,))
        tasks = [
            asyncio.create_task(client.post("/v1/reservations", json={"msisdn": msisdn}, headers=partner))
            for _ in range(20)
        ]
        await factories.wait_for_lock_waiters(conninfo, 20)
        await holder.rollback()
    responses = await asyncio.gather(*tasks)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, statuses
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "number_unavailable")
    rows = raw.execute("SELECT count(*) FROM reservations WHERE msisdn = %s", (msisdn,)).fetchone()
    assert rows == (1,)


async def test_fifty_concurrent_any_number_claims_on_a_pool_of_thirty(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    block: dict[str, Any],
    raw: psycopg.Connection,
    conninfo: str,
    mvno: dict[str, Any],
) -> None:
    # Leave exactly 30 numbers claimable in this MVNO.
    raw.execute(
        "UPDATE numbers SET status = 'quarantined' WHERE block_prefix = %s AND msisdn > %s",
        (block["prefix"], block["prefix"] + "0029"),
    )
    # Barrier: hold the MVNO row (each reservation reads it FOR KEY SHARE), release when all 50 wait.
    async with await psycopg.AsyncConnection.connect(conninfo) as holder:
        await holder.execute("SELECT 1 FROM mvnos WHERE id = %s FOR UPDATE", (mvno["id"],))
        tasks = [
            asyncio.create_task(client.post("/v1/reservations", json={"criteria": {}}, headers=partner))
            for _ in range(50)
        ]
        await factories.wait_for_lock_waiters(conninfo, 50)
        await holder.rollback()
    responses = await asyncio.gather(*tasks)
    won = [r.json()["msisdn"] for r in responses if r.status_code == 201]
    lost = [r for r in responses if r.status_code != 201]
    assert len(won) == 30
    assert len(set(won)) == 30
    assert set(won) == {f"{block['prefix']}{i:04d}" for i in range(30)}
    assert len(lost) == 20
    for r in lost:
        assert_problem(r, 409, "number_unavailable")


async def test_reservation_events(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    block: dict[str, Any],
    clock: Any,
    db: Database,
    settings: Settings,
) -> None:
    reserved = (
        await client.post("/v1/reservations", json={"msisdn": block["prefix"] + "0600"}, headers=partner)
    ).json()
    await client.delete(f"/v1/reservations/{reserved['id']}", headers=partner)
    lapsing = (
        await client.post(
            "/v1/reservations", json={"msisdn": block["prefix"] + "0601", "ttl_seconds": 60}, headers=partner
        )
    ).json()
    clock.advance(seconds=61)
    await sweeper.sweep_once(db, clock, settings)
    page = (
        await client.get(
            "/v1/events",
            params={"limit": "500", "types": "number.reserved,reservation.released,reservation.expired"},
            headers=partner,
        )
    ).json()
    mine = [
        (
            e["type"],
            e["subject"]["id"] if e["subject"]["kind"] == "reservation" else e["data"].get("reservation_id"),
        )
        for e in page["items"]
    ]
    assert ("number.reserved", reserved["id"]) in mine
    assert ("reservation.released", reserved["id"]) in mine
    assert ("number.reserved", lapsing["id"]) in mine
    assert ("reservation.expired", lapsing["id"]) in mine
    event = next(
        e
        for e in page["items"]
        if e["type"] == "number.reserved" and e["data"]["reservation_id"] == reserved["id"]
    )
    assert event["data"]["msisdn"] == block["prefix"] + "0600"
    assert event["mvno_id"] == reserved["mvno_id"]


async def test_ttl_must_be_a_number(
    client: httpx.AsyncClient, partner: dict[str, str], block: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/reservations", json={"msisdn": block["prefix"] + "0700", "ttl_seconds": "600"}, headers=partner
    )
    assert_problem(response, 422, "validation_error")


async def test_bad_pattern_in_body_points_at_the_body(
    client: httpx.AsyncClient, partner: dict[str, str]
) -> None:
    response = await client.post("/v1/reservations", json={"criteria": {"pattern": "12ab"}}, headers=partner)
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["loc"][0] == "body"


async def test_lapsed_reservation_is_found_and_claimed_by_any_number_requests(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    block: dict[str, Any],
    raw: psycopg.Connection,
    clock: Any,
) -> None:
    msisdn = block["prefix"] + "0800"
    first = await client.post("/v1/reservations", json={"msisdn": msisdn, "ttl_seconds": 60}, headers=partner)
    assert first.status_code == 201
    # Nothing else in this MVNO is free: only the lapsing reservation can satisfy "any number".
    raw.execute(
        "UPDATE numbers SET status = 'quarantined' WHERE block_prefix = %s AND status = 'available'",
        (block["prefix"],),
    )
    assert_problem(
        await client.post("/v1/reservations", json={"criteria": {}}, headers=partner),
        409,
        "number_unavailable",
    )
    clock.advance(seconds=61)
    search = await client.get(
        "/v1/numbers", params={"status": "available", "pattern": "*0800"}, headers=partner
    )
    assert [n["msisdn"] for n in search.json()["items"]] == [msisdn]
    second = await client.post("/v1/reservations", json={"criteria": {}}, headers=partner)
    assert second.status_code == 201, second.text
    assert second.json()["msisdn"] == msisdn
    reserved = await client.get(
        "/v1/numbers", params={"status": "reserved", "pattern": "*0800"}, headers=partner
    )
    assert [n["msisdn"] for n in reserved.json()["items"]] == [msisdn]


async def test_any_number_moves_on_to_the_next_block_when_one_is_full(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    mvno = await factories.create_mvno(client, operator)
    full = await factories.allocate(client, operator, mvno["id"], segment="1702")
    spare = await factories.allocate(client, operator, mvno["id"], segment="1702")
    raw.execute("UPDATE numbers SET status = 'in_use' WHERE block_prefix = %s", (full["prefix"],))
    response = await client.post(
        "/v1/reservations", json={"mvno_id": mvno["id"], "criteria": {}}, headers=operator
    )
    assert response.status_code == 201, response.text
    assert response.json()["msisdn"] == spare["prefix"] + "0000"


async def test_an_empty_msisdn_is_a_422_not_a_500(client: httpx.AsyncClient, partner: dict[str, str]) -> None:
    response = await client.post("/v1/reservations", json={"msisdn": ""}, headers=partner)
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["loc"] == ["body", "msisdn"]
