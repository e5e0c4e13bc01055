"""Line profiles (consumer, iot, industry): the rules come from ``line_profiles``; the card caps per cap
class hold under concurrent activations; IMEI locks; enterprises register their cards' end users."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx
import psycopg
from stdnum import luhn

from mvno_core.kernel.db import Database
from tests import factories
from tests.cancellations.helpers import body as cancellation_body
from tests.factories import assert_problem
from tests.lines.conftest import Scene
from tests.reservations.test_round_trips import counting

_rng = random.Random()


def imei() -> str:
    body = "".join(_rng.choice("0123456789") for _ in range(14))
    return body + luhn.calc_check_digit(body)


def iot(**overrides: Any) -> dict[str, Any]:
    return {"profile": "iot", "imei": imei(), **overrides}


async def concurrently(
    client: httpx.AsyncClient, scene: Scene, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    gate = asyncio.Event()

    async def attempt(body: dict[str, Any]) -> httpx.Response:
        await gate.wait()
        return await client.post("/v1/lines", json=body, headers=scene.partner)

    tasks = [asyncio.create_task(attempt(body)) for body in bodies]
    await asyncio.sleep(0.05)
    gate.set()
    return list(await asyncio.gather(*tasks))


def slots(raw: psycopg.Connection, subscriber_id: str) -> dict[str, int]:
    rows = raw.execute(
        "SELECT cap_class, live_lines FROM card_slots WHERE subscriber_id = %s", (subscriber_id,)
    ).fetchall()
    return dict(rows)


def live_total(raw: psycopg.Connection, subscriber_id: str) -> int:
    row = raw.execute("SELECT live_lines FROM subscribers WHERE id = %s", (subscriber_id,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_iot_general_cap_is_ten_and_the_consumer_cap_stays_five(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    general = [scene.line_body(scene.number(i), **iot(general_data=True)) for i in range(20)]
    responses = await concurrently(client, scene, general)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 10, codes
    for refused in (r for r in responses if r.status_code != 201):
        problem = assert_problem(refused, 409, "card_limit_reached")
        assert (problem["limit"], problem["current"]) == (10, 10)

    consumer = [scene.line_body(scene.number(20 + i)) for i in range(8)]
    responses = await concurrently(client, scene, consumer)
    assert sorted(r.status_code for r in responses).count(201) == 5
    for refused in (r for r in responses if r.status_code != 201):
        problem = assert_problem(refused, 409, "card_limit_reached")
        assert (problem["limit"], problem["current"]) == (5, 5)
    # Directional IoT cards count in the standard class: full too.
    directional = await scene.activate(client, scene.number(30), **iot())
    assert assert_problem(directional, 409, "card_limit_reached")["limit"] == 5
    assert slots(raw, scene.subscriber_id) == {"standard": 5, "iot_general": 10}
    assert live_total(raw, scene.subscriber_id) == 15

    # Ending an IoT general-data line frees a slot of its class, not of the other.
    iot_line = raw.execute(
        "SELECT id FROM lines WHERE subscriber_id = %s AND cap_class = 'iot_general' LIMIT 1",
        (scene.subscriber_id,),
    ).fetchone()
    assert iot_line is not None
    cancelled = await client.post(
        f"/v1/lines/{iot_line[0]}/cancellations", json=cancellation_body(), headers=scene.partner
    )
    assert cancelled.status_code == 201, cancelled.text
    assert slots(raw, scene.subscriber_id) == {"standard": 5, "iot_general": 9}
    assert live_total(raw, scene.subscriber_id) == 14
    still_full = await scene.activate(client, scene.number(31))
    assert assert_problem(still_full, 409, "card_limit_reached")["limit"] == 5
    again = await scene.activate(client, scene.number(32), **iot(general_data=True))
    assert again.status_code == 201, again.text
    assert slots(raw, scene.subscriber_id) == {"standard": 5, "iot_general": 10}


async def test_an_iot_line_has_voice_and_sms_off_and_the_data_cap(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    device = imei()
    created = await scene.activate(client, scene.number(40), profile="iot", imei=device)
    assert created.status_code == 201, created.text
    line = created.json()
    expected = {
        "profile": "iot",
        "general_data": False,
        "voice_enabled": False,
        "sms_enabled": False,
        "data_cap_mb": 1024,
        "imei": device,
    }
    assert {key: line[key] for key in expected} == expected
    read = (await client.get(f"/v1/lines/{line['id']}", headers=scene.partner)).json()
    assert {key: read[key] for key in expected} == expected
    general = await scene.activate(client, scene.number(41), **iot(general_data=True))
    assert (general.json()["data_cap_mb"], general.json()["general_data"]) == (5120, True)
    row = raw.execute(
        "SELECT profile, cap_class, voice_enabled, sms_enabled, data_cap_mb, imei FROM lines WHERE id = %s",
        (line["id"],),
    ).fetchone()
    assert row == ("iot", "standard", False, False, 1024, device)
    consumer = (await scene.activate(client, scene.number(42))).json()
    assert (consumer["profile"], consumer["voice_enabled"], consumer["data_cap_mb"], consumer["imei"]) == (
        "consumer",
        True,
        None,
        None,
    )
    # The activation event says under which profile.
    data = raw.execute(
        "SELECT data FROM events WHERE subject_id = %s AND type = 'line.activated'", (line["id"],)
    ).fetchone()
    assert data is not None
    assert (data[0]["profile"], data[0]["imei"]) == ("iot", device)


async def test_imei_and_profile_are_validated(client: httpx.AsyncClient, scene: Scene) -> None:
    good = imei()
    wrong_check = good[:-1] + str((int(good[-1]) + 1) % 10)
    for bad in (wrong_check, good[:14], good + "0", "35-209900-176148-1"):
        response = await scene.activate(client, scene.number(50), profile="iot", imei=bad)
        assert assert_problem(response, 422, "validation_error")["errors"][0]["loc"] == ["body", "imei"]
    missing = await scene.activate(client, scene.number(50), profile="iot")
    assert assert_problem(missing, 422, "validation_error")["errors"][0]["loc"] == ["body", "imei"]
    for unknown in ("satellite", "IOT", "x" * 17):
        response = await scene.activate(client, scene.number(50), profile=unknown, imei=good)
        assert assert_problem(response, 422, "validation_error")["errors"][0]["loc"] == ["body", "profile"]
    consumer_general = await scene.activate(client, scene.number(50), general_data=True)
    problem = assert_problem(consumer_general, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", "general_data"]
    # One live line per device: a second SIM locked to the same IMEI is a conflict.
    first = await scene.activate(client, scene.number(51), profile="iot", imei=good)
    assert first.status_code == 201, first.text
    second = await scene.activate(client, scene.number(52), profile="iot", imei=good)
    assert assert_problem(second, 409, "conflict")["existing_id"] == first.json()["id"]
    # Nothing was taken by the refusals: one line, one slot.
    lines = await client.get(f"/v1/lines?subscriber_id={scene.subscriber_id}", headers=scene.partner)
    assert [line["msisdn"] for line in lines.json()["items"]] == [scene.number(51)]


async def _enterprise(client: httpx.AsyncClient, scene: Scene) -> dict[str, Any]:
    enterprise = await factories.create_subscriber(
        client,
        scene.partner,
        kind="enterprise",
        name="测试物联科技有限公司",
        id_type="business_license",
        id_number=factories.uscc_code(),
    )
    check = await client.post(
        f"/v1/subscribers/{enterprise['id']}/verifications",
        json={"method": "enterprise_registration", "result": "passed", "channel": "store"},
        headers=scene.partner,
    )
    assert check.status_code == 201, check.text
    return enterprise


async def test_enterprise_iot_lines_register_their_end_user(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    enterprise = await _enterprise(client, scene)
    person = {"name": "李四", "id_type": "resident_id", "id_number": factories.resident_id()}
    without = await scene.activate(client, scene.number(60), subscriber_id=enterprise["id"], **iot())
    assert assert_problem(without, 422, "validation_error")["errors"][0]["loc"] == ["body", "end_user"]
    bad_id = {
        **person,
        "id_number": person["id_number"][:-1] + ("0" if person["id_number"][-1] != "0" else "1"),
    }
    invalid = await scene.activate(
        client, scene.number(60), subscriber_id=enterprise["id"], end_user=bad_id, **iot()
    )
    loc = assert_problem(invalid, 422, "validation_error")["errors"][0]["loc"]
    assert loc == ["body", "end_user", "id_number"]
    created = await scene.activate(
        client, scene.number(60), subscriber_id=enterprise["id"], end_user=person, **iot()
    )
    assert created.status_code == 201, created.text
    line_id = created.json()["id"]
    assert person["id_number"] not in created.text
    assert person["name"] not in created.text

    registered = (await client.get(f"/v1/lines/{line_id}/end-users", headers=scene.partner)).json()["items"]
    masked = person["id_number"][:3] + "*" * 11 + person["id_number"][-4:]
    assert [(r["name_masked"], r["id_number_masked"], r["replaced_at"]) for r in registered] == [
        ("李*", masked, None)
    ]
    stored = raw.execute(
        "SELECT name_ciphertext, id_number_ciphertext FROM line_end_users WHERE line_id = %s", (line_id,)
    ).fetchone()
    assert stored is not None
    assert person["id_number"].encode() not in bytes(stored[1])
    assert person["name"].encode() not in bytes(stored[0])

    # The device changes hands: a new registration replaces the current one, journalled.
    other = {"name": "王五", "id_type": "resident_id", "id_number": factories.resident_id()}
    again = await client.post(f"/v1/lines/{line_id}/end-users", json=other, headers=scene.partner)
    assert again.status_code == 201, again.text
    assert other["id_number"] not in again.text
    history = (await client.get(f"/v1/lines/{line_id}/end-users", headers=scene.partner)).json()["items"]
    assert [r["name_masked"] for r in history] == ["李*", "王*"]
    assert history[0]["replaced_at"] is not None
    assert history[1]["replaced_at"] is None

    for table, column in (("audit_entries", "action"), ("events", "type")):
        rows = raw.execute(
            f"SELECT {column}, data FROM {table} WHERE subject_id = %s ORDER BY 1", (line_id,)
        ).fetchall()
        assert [row[0] for row in rows] == ["line.activated", "line.end_user_registered"], table
        text = json.dumps([row[1] for row in rows], ensure_ascii=False)
        assert "李*" in text
        assert "王*" in text
        for secret in (person["name"], person["id_number"], other["name"], other["id_number"]):
            assert secret not in text

    # An enterprise's consumer line needs no end user (the profile says so).
    consumer = await scene.activate(client, scene.number(61), subscriber_id=enterprise["id"])
    assert consumer.status_code == 201, consumer.text


async def test_individuals_register_no_end_user(client: httpx.AsyncClient, scene: Scene) -> None:
    person = {"name": "李四", "id_type": "resident_id", "id_number": factories.resident_id()}
    refused = await scene.activate(client, scene.number(70), end_user=person, **iot())
    assert assert_problem(refused, 422, "validation_error")["errors"][0]["loc"] == ["body", "end_user"]
    line = await scene.activate(client, scene.number(70), **iot())
    assert line.status_code == 201, line.text
    later = await client.post(f"/v1/lines/{line.json()['id']}/end-users", json=person, headers=scene.partner)
    assert_problem(later, 422, "validation_error")
    licence = {**person, "id_type": "business_license", "id_number": factories.uscc_code()}
    enterprise = await _enterprise(client, scene)
    as_company = await scene.activate(
        client, scene.number(71), subscriber_id=enterprise["id"], end_user=licence, **iot()
    )
    loc = assert_problem(as_company, 422, "validation_error")["errors"][0]["loc"]
    assert loc == ["body", "end_user", "id_type"]


async def test_profiles_are_listed(client: httpx.AsyncClient, scene: Scene) -> None:
    items = (await client.get("/v1/line-profiles", headers=scene.partner)).json()["items"]
    caps = {(p["profile"], p["general_data"]): (p["cap_class"], p["card_cap"]) for p in items}
    assert caps == {
        ("consumer", False): ("standard", 5),
        ("industry", False): ("standard", 5),
        ("iot", False): ("standard", 5),
        ("iot", True): ("iot_general", 10),
    }


async def test_iot_activation_with_an_end_user_is_one_statement(
    client: httpx.AsyncClient, scene: Scene, db: Database
) -> None:
    enterprise = await _enterprise(client, scene)
    person = {"name": "李四", "id_type": "resident_id", "id_number": factories.resident_id()}
    assert (await client.get("/v1/line-profiles", headers=scene.partner)).status_code == 200
    with counting(db) as seen:
        response = await client.post(
            "/v1/lines",
            json=scene.line_body(scene.number(80), subscriber_id=enterprise["id"], end_user=person, **iot()),
            headers={**scene.partner, "Idempotency-Key": f"rt-iot-{scene.number(80)}"},
        )
    assert response.status_code == 201, response.text
    assert len(seen.statements) <= 2, seen.statements
    assert seen.commits == 1


async def test_a_profile_edited_by_sql_is_picked_up(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    """The server's copy of the rules is checked by the statement: an edit refuses once (503, the
    copy refreshed, nothing written) and the retry gets the new rules."""
    assert (await client.get("/v1/line-profiles", headers=scene.partner)).status_code == 200
    raw.execute("UPDATE line_profiles SET data_cap_mb = 2048 WHERE profile = 'iot' AND NOT general_data")
    try:
        stale = await scene.activate(client, scene.number(90), **iot())
        assert_problem(stale, 503, "service_unavailable")
        assert slots(raw, scene.subscriber_id) == {}
        retried = await scene.activate(client, scene.number(90), **iot())
        assert retried.status_code == 201, retried.text
        assert retried.json()["data_cap_mb"] == 2048
    finally:
        raw.execute("UPDATE line_profiles SET data_cap_mb = 1024 WHERE profile = 'iot' AND NOT general_data")
        assert (await client.get("/v1/line-profiles", headers=scene.partner)).status_code == 200
