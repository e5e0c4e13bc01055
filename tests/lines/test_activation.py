"""Activation: every gate's code, races decided by the database, replay, and what it costs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest

from mvno_core.kernel.db import Database
from tests import factories
from tests.factories import assert_problem
from tests.lines.conftest import Scene, iccid, imsi
from tests.reservations.test_round_trips import counting


async def test_activation_creates_the_line_and_binds_the_number(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    msisdn = scene.number(1)
    body = scene.line_body(msisdn)
    response = await client.post("/v1/lines", json=body, headers=scene.partner)
    assert response.status_code == 201, response.text
    line = response.json()
    assert line["id"].startswith("lin_")
    assert line["status"] == "active"
    assert line["msisdn"] == msisdn
    assert line["mvno_id"] == scene.mvno_id
    assert line["open_holds"] == []
    assert response.headers["location"] == f"/v1/lines/{line['id']}"
    number = (await client.get(f"/v1/numbers/{msisdn}", headers=scene.partner)).json()
    assert number["status"] == "in_use"
    assert number["line_id"] == line["id"]
    fetched = (await client.get(f"/v1/lines/{line['id']}", headers=scene.partner)).json()
    assert fetched == line
    counter = raw.execute(
        "SELECT live_lines FROM subscribers WHERE id = %s", (scene.subscriber_id,)
    ).fetchone()
    assert counter == (1,)
    events = raw.execute("SELECT type FROM events WHERE subject_id = %s", (line["id"],)).fetchall()
    assert events == [("line.activated",)]
    audit = raw.execute("SELECT action FROM audit_entries WHERE subject_id = %s", (line["id"],)).fetchall()
    assert audit == [("line.activated",)]


async def test_mvno_not_active(client: httpx.AsyncClient, operator: dict[str, str], scene: Scene) -> None:
    restricted = await client.post(
        f"/v1/mvnos/{scene.mvno_id}/restrict", json={"reason": "rectification"}, headers=operator
    )
    assert restricted.status_code == 200
    response = await scene.activate(client, scene.number(2))
    assert_problem(response, 409, "mvno_not_active")


async def test_unverified_subscriber(client: httpx.AsyncClient, scene: Scene) -> None:
    unverified = await factories.create_subscriber(client, scene.partner, verified=False)
    body = scene.line_body(scene.number(3), subscriber_id=unverified["id"])
    assert_problem(
        await client.post("/v1/lines", json=body, headers=scene.partner), 409, "real_name_unverified"
    )


async def test_another_mvnos_subscriber_is_not_found(
    client: httpx.AsyncClient, scene: Scene, other_scene: Scene
) -> None:
    body = scene.line_body(scene.number(4), subscriber_id=other_scene.subscriber_id)
    assert_problem(await client.post("/v1/lines", json=body, headers=scene.partner), 404, "not_found")


async def test_number_gates(client: httpx.AsyncClient, scene: Scene, other_scene: Scene) -> None:
    taken = scene.number(5)
    assert (await scene.activate(client, taken)).status_code == 201
    again = await scene.activate(client, taken)
    assert_problem(again, 409, "number_unavailable")
    theirs = await client.post(
        "/v1/lines", json=scene.line_body(other_scene.number(5)), headers=scene.partner
    )
    assert_problem(theirs, 409, "number_unavailable")
    reserved_by_them = other_scene.number(6)
    reservation = await client.post(
        "/v1/reservations", json={"msisdn": reserved_by_them}, headers=other_scene.partner
    )
    assert reservation.status_code == 201
    stolen = await scene.activate(client, reserved_by_them)
    assert_problem(stolen, 409, "number_unavailable")


async def test_host_mismatch(client: httpx.AsyncClient, scene: Scene) -> None:
    # The scene's numbers are on segment 165 (CMCC); 01 is a CUCC MNC, 12 is nobody's.
    for mnc in ("01", "12"):
        body = scene.line_body(scene.number(7), imsi=imsi(mnc))
        assert_problem(await client.post("/v1/lines", json=body, headers=scene.partner), 422, "host_mismatch")


@pytest.mark.parametrize(
    ("bad_iccid", "why"),
    [("8986001234567890123", "luhn"), ("8886" + "0" * 14 + "0", "prefix"), ("8986123", "length")],
)
async def test_iccid_checks(client: httpx.AsyncClient, scene: Scene, bad_iccid: str, why: str) -> None:
    if why == "luhn":
        good = iccid()
        bad_iccid = good[:-1] + str((int(good[-1]) + 1) % 10)
    body = scene.line_body(scene.number(8), iccid=bad_iccid)
    response = await client.post("/v1/lines", json=body, headers=scene.partner)
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["loc"][:2] == ["body", "iccid"]


async def test_premium_number_needs_contract_end(client: httpx.AsyncClient, scene: Scene) -> None:
    premium = scene.prefix + "8888"
    response = await scene.activate(client, premium)
    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"][0]["loc"] == ["body", "contract_end"]
    with_contract = scene.line_body(premium, contract_end="2027-12-31")
    assert (await client.post("/v1/lines", json=with_contract, headers=scene.partner)).status_code == 201


async def test_iccid_and_imsi_unique_among_live_lines(client: httpx.AsyncClient, scene: Scene) -> None:
    first = (await scene.activate(client, scene.number(9))).json()
    for clash in ({"iccid": first["iccid"]}, {"imsi": first["imsi"]}):
        response = await client.post(
            "/v1/lines", json=scene.line_body(scene.number(10), **clash), headers=scene.partner
        )
        assert_problem(response, 409, "conflict")
        assert response.json()["existing_id"] == first["id"]
    # Nothing of the refused activations stuck: the number is still free.
    number = (await client.get(f"/v1/numbers/{scene.number(10)}", headers=scene.partner)).json()
    assert number["status"] == "available"


async def test_own_reservation_is_consumed(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    msisdn = scene.number(11)
    reservation = (
        await client.post("/v1/reservations", json={"msisdn": msisdn}, headers=scene.partner)
    ).json()
    body = scene.line_body(msisdn, reservation_id=reservation["id"])
    assert (await client.post("/v1/lines", json=body, headers=scene.partner)).status_code == 201
    status = (await client.get(f"/v1/reservations/{reservation['id']}", headers=scene.partner)).json()[
        "status"
    ]
    assert status == "consumed"
    release = await client.delete(f"/v1/reservations/{reservation['id']}", headers=scene.partner)
    assert_problem(release, 409, "illegal_transition")


async def test_replay_with_idempotency_key_creates_one_line(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    body = scene.line_body(scene.number(12))
    headers = {**scene.partner, "Idempotency-Key": f"act-{scene.number(12)}"}
    first = await client.post("/v1/lines", json=body, headers=headers)
    second = await client.post("/v1/lines", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content
    count = raw.execute("SELECT count(*) FROM lines WHERE msisdn = %s", (scene.number(12),)).fetchone()
    assert count == (1,)


async def test_activation_round_trips(
    client: httpx.AsyncClient, scene: Scene, db: Database, app: Any
) -> None:
    assert (await client.get("/v1/segments", headers=scene.partner)).status_code == 200
    # The served app reads the line profiles at start-up (the test app has no lifespan): this read does.
    assert (await client.get("/v1/line-profiles", headers=scene.partner)).status_code == 200
    with counting(db, app.state.lean_pool) as seen:
        response = await client.post(
            "/v1/lines",
            json=scene.line_body(scene.number(13)),
            headers={**scene.partner, "Idempotency-Key": f"rt-{scene.number(13)}"},
        )
    assert response.status_code == 201, response.text
    # The lean lane: the key's lock and lookup joined to the activation statement, in autocommit.
    assert len(seen.statements) == 1, seen.statements
    assert seen.commits == 0


async def test_thirty_concurrent_activations_of_one_number_one_wins(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    msisdn = scene.number(14)
    subscribers = [scene.subscriber_id] + [
        (await factories.create_subscriber(client, scene.partner, verified=True))["id"] for _ in range(5)
    ]
    bodies = [scene.line_body(msisdn, subscriber_id=subscribers[i % len(subscribers)]) for i in range(30)]
    gate = asyncio.Event()

    async def attempt(body: dict[str, Any]) -> httpx.Response:
        await gate.wait()
        return await client.post("/v1/lines", json=body, headers=scene.partner)

    tasks = [asyncio.create_task(attempt(body)) for body in bodies]
    await asyncio.sleep(0.05)
    gate.set()
    responses = await asyncio.gather(*tasks)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, codes
    assert all(r.json()["code"] == "number_unavailable" for r in responses if r.status_code != 201)
    live = raw.execute("SELECT count(*) FROM lines WHERE msisdn = %s AND status <> 'cancelled'", (msisdn,))
    assert live.fetchone() == (1,)
    counters = raw.execute(
        "SELECT sum(live_lines) FROM subscribers WHERE id = ANY(%s)", (subscribers,)
    ).fetchone()
    assert counters == (1,)


async def test_an_id_with_four_lines_two_concurrent_activations_one_wins(
    client: httpx.AsyncClient, scene: Scene
) -> None:
    for i in range(4):
        assert (await scene.activate(client, scene.number(20 + i))).status_code == 201
    gate = asyncio.Event()

    async def attempt(n: int) -> httpx.Response:
        await gate.wait()
        return await client.post(
            "/v1/lines", json=scene.line_body(scene.number(30 + n)), headers=scene.partner
        )

    tasks = [asyncio.create_task(attempt(n)) for n in range(2)]
    await asyncio.sleep(0.05)
    gate.set()
    responses = await asyncio.gather(*tasks)
    assert sorted(r.status_code for r in responses) == [201, 409]
    refused = next(r for r in responses if r.status_code == 409)
    assert_problem(refused, 409, "card_limit_reached")
    assert refused.json()["limit"] == 5
    assert refused.json()["current"] == 5


async def test_twenty_concurrent_activations_for_a_fresh_id_give_exactly_five(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    fresh = (await factories.create_subscriber(client, scene.partner, verified=True))["id"]
    gate = asyncio.Event()

    async def attempt(n: int) -> httpx.Response:
        await gate.wait()
        body = scene.line_body(scene.number(100 + n), subscriber_id=fresh)
        return await client.post("/v1/lines", json=body, headers=scene.partner)

    tasks = [asyncio.create_task(attempt(n)) for n in range(20)]
    await asyncio.sleep(0.05)
    gate.set()
    responses = await asyncio.gather(*tasks)
    assert [r.status_code for r in responses].count(201) == 5
    assert {r.json()["code"] for r in responses if r.status_code != 201} == {"card_limit_reached"}
    live = raw.execute("SELECT count(*) FROM lines WHERE subscriber_id = %s", (fresh,)).fetchone()
    assert live == (5,)
    assert raw.execute("SELECT live_lines FROM subscribers WHERE id = %s", (fresh,)).fetchone() == (5,)


async def test_regulator_cannot_activate(
    client: httpx.AsyncClient, regulator: dict[str, str], scene: Scene
) -> None:
    response = await client.post("/v1/lines", json=scene.line_body(scene.number(40)), headers=regulator)
    assert_problem(response, 403, "forbidden")


async def test_operator_activates_for_the_subscribers_mvno(
    client: httpx.AsyncClient, operator: dict[str, str], scene: Scene, other_scene: Scene
) -> None:
    response = await client.post("/v1/lines", json=scene.line_body(scene.number(41)), headers=operator)
    assert response.status_code == 201, response.text
    assert response.json()["mvno_id"] == scene.mvno_id
    listed = (
        await client.get(f"/v1/lines?subscriber_id={scene.subscriber_id}", headers=scene.partner)
    ).json()
    assert response.json()["id"] in {line["id"] for line in listed["items"]}
    hidden = await client.get(f"/v1/lines/{response.json()['id']}", headers=scene.other_partner)
    assert_problem(hidden, 404, "not_found")


async def test_a_numbers_lines_are_listed_through_an_index(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    """``GET /v1/lines?msisdn=`` (and the console's number page) finds a number's lines, ended ones
    included, through ``ix_lines_msisdn``, not by reading the whole table."""
    line = await scene.line(client, 0)
    listed = await client.get("/v1/lines", params={"msisdn": line["msisdn"]}, headers=scene.partner)
    assert [item["id"] for item in listed.json()["items"]] == [line["id"]]
    with raw.transaction():
        raw.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be read whole anyway
        plan = "\n".join(
            str(row[0])
            for row in raw.execute(
                "EXPLAIN SELECT id FROM lines WHERE msisdn = %s AND id > %s ORDER BY id LIMIT 50",
                (line["msisdn"], ""),
            )
        )
    assert "ix_lines_msisdn" in plan, plan
