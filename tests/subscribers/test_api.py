"""Subscribers over HTTP on real PostgreSQL: registration, ID checks, duplicates (also concurrent),
scoping per role, verifications, search and 一证通查."""

from __future__ import annotations

import asyncio
import random
from datetime import date
from typing import Any

import httpx
import psycopg
import pytest
from stdnum.cn import ric

from mvno_core.events.sequencer import position_pending
from mvno_core.kernel.db import Database
from tests import factories
from tests.factories import (
    NEWER_COUNTY_CODES,
    assert_problem,
    create_subscriber,
    resident_id,
    subscriber_body,
)

Headers = dict[str, str]


def _with_check_char(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


async def test_create_returns_masked_data_only(
    client: httpx.AsyncClient, partner: Headers, mvno: dict[str, Any]
) -> None:
    number = _with_check_char("11010519491231002")
    response = await client.post(
        "/v1/subscribers", json=subscriber_body(name="王小明", id_number=number), headers=partner
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("sub_")
    assert response.headers["location"] == f"/v1/subscribers/{body['id']}"
    assert body["mvno_id"] == mvno["id"]  # implied for a partner
    assert body["name_masked"] == "王**"
    assert body["id_number_masked"] == "110***********002X"
    assert body["real_name_status"] == "unverified"
    assert body["live_lines"] == 0
    assert "王小明" not in response.text
    assert number not in response.text
    fetched = await client.get(f"/v1/subscribers/{body['id']}", headers=partner)
    assert fetched.json() == body


async def test_a_few_hundred_generated_ids_through_the_api(
    client: httpx.AsyncClient, operator: Headers, mvno: dict[str, Any]
) -> None:
    rng = random.Random(7)
    numbers = {resident_id(rng) for _ in range(250)}
    numbers |= {resident_id(rng, born=date(1971, 3, 9), address=code) for code in NEWER_COUNTY_CODES}
    numbers |= {
        resident_id(rng, born=date(1971, 3, 10), address=code, sequence=7) for code in NEWER_COUNTY_CODES
    }
    for number in numbers:
        response = await client.post(
            "/v1/subscribers", json=subscriber_body(mvno_id=mvno["id"], id_number=number), headers=operator
        )
        assert response.status_code == 201, (response.text, number[:6])


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("wrong_check", "check character"),
        (_with_check_char("110105" + "19900230" + "123"), "not a real date"),
        (_with_check_char("110105" + "20990101" + "123"), "future"),
        ("11010519900101123", "18 characters"),
        ("1101051990010112345", "18 characters"),
        ("11010519900101A23X", "17 digits"),
    ],
)
async def test_bad_resident_ids_are_422_naming_the_field(
    client: httpx.AsyncClient, partner: Headers, number: str, reason: str
) -> None:
    if number == "wrong_check":
        good = resident_id(random.Random(11))
        number = good[:-1] + next(c for c in "0123456789X" if c != good[-1])
    response = await client.post("/v1/subscribers", json=subscriber_body(id_number=number), headers=partner)
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", "id_number"]
    assert reason in problem["errors"][0]["msg"]
    assert number not in response.text


async def test_enterprise_with_a_business_licence(client: httpx.AsyncClient, partner: Headers) -> None:
    code = factories.uscc_code(random.Random(5))
    good = await client.post(
        "/v1/subscribers",
        json=subscriber_body(
            kind="enterprise", name="测试科技有限公司", id_type="business_license", id_number=code
        ),
        headers=partner,
    )
    assert good.status_code == 201, good.text
    assert good.json()["id_number_masked"] == code[:3] + "*" * 11 + code[-4:]
    bad = await client.post(
        "/v1/subscribers",
        json=subscriber_body(
            kind="enterprise",
            name="测试科技有限公司",
            id_type="business_license",
            id_number=code[:-1] + "0" if code[-1] != "0" else code[:-1] + "1",
        ),
        headers=partner,
    )
    assert assert_problem(bad, 422, "validation_error")["errors"][0]["loc"] == ["body", "id_number"]
    # A person cannot register with a business licence, nor an enterprise with a resident ID.
    mismatch = await client.post(
        "/v1/subscribers", json=subscriber_body(id_type="business_license", id_number=code), headers=partner
    )
    assert assert_problem(mismatch, 422, "validation_error")["errors"][0]["loc"] == ["body", "id_type"]
    mismatch = await client.post("/v1/subscribers", json=subscriber_body(kind="enterprise"), headers=partner)
    assert assert_problem(mismatch, 422, "validation_error")["errors"][0]["loc"] == ["body", "id_type"]


async def test_other_document_types(client: httpx.AsyncClient, partner: Headers) -> None:
    for id_type, number in [
        ("passport", "E" + str(random.randint(10**7, 10**8 - 1))),
        ("hk_macau_permit", "H" + str(random.randint(10**7, 10**8 - 1))),
        ("taiwan_permit", str(random.randint(10**7, 10**8 - 1))),
        ("foreign_permanent_resident", "USA" + str(random.randint(10**11, 10**12 - 1))),
    ]:
        response = await client.post(
            "/v1/subscribers", json=subscriber_body(id_type=id_type, id_number=number), headers=partner
        )
        assert response.status_code == 201, (id_type, response.text)
    bad = await client.post(
        "/v1/subscribers",
        json=subscriber_body(id_type="hk_macau_permit", id_number="K12345678"),
        headers=partner,
    )
    assert assert_problem(bad, 422, "validation_error")["errors"][0]["loc"] == ["body", "id_number"]


async def test_unknown_fields_and_short_names_are_422(client: httpx.AsyncClient, partner: Headers) -> None:
    unknown = await client.post("/v1/subscribers", json=subscriber_body(nickname="x"), headers=partner)
    assert_problem(unknown, 422, "validation_error")
    short = await client.post("/v1/subscribers", json=subscriber_body(name="张"), headers=partner)
    assert assert_problem(short, 422, "validation_error")["errors"][0]["loc"] == ["body", "name"]


async def test_duplicate_is_409_with_the_existing_id(client: httpx.AsyncClient, partner: Headers) -> None:
    number = _with_check_char("11010519491231002")
    first = await create_subscriber(client, partner, id_number=number, name="李四")
    # The same person, written differently (lower-case x, spaces): still the same ID.
    again = await client.post(
        "/v1/subscribers",
        json=subscriber_body(id_number=f"{number[:6]} {number[6:].lower()}", name="李 四"),
        headers=partner,
    )
    assert assert_problem(again, 409, "conflict")["existing_id"] == first["id"]
    assert number not in again.text


async def test_two_concurrent_creates_one_201_one_409_with_its_id(
    client: httpx.AsyncClient, partner: Headers, mvno: dict[str, Any], conninfo: str, raw: psycopg.Connection
) -> None:
    body = subscriber_body()
    # Barrier: hold the MVNO row (each create reads it FOR KEY SHARE); release when both wait on it.
    async with await psycopg.AsyncConnection.connect(conninfo) as holder:
        await holder.execute("SELECT 1 FROM mvnos WHERE id = %s FOR UPDATE", (mvno["id"],))
        tasks = [
            asyncio.create_task(client.post("/v1/subscribers", json=body, headers=partner)) for _ in range(2)
        ]
        await factories.wait_for_lock_waiters(conninfo, 2)
    responses = await asyncio.gather(*tasks)
    assert sorted(r.status_code for r in responses) == [201, 409]
    created = next(r for r in responses if r.status_code == 201).json()
    conflict = assert_problem(next(r for r in responses if r.status_code == 409), 409, "conflict")
    assert conflict["existing_id"] == created["id"]
    count = raw.execute("SELECT count(*) FROM subscribers WHERE mvno_id = %s", (mvno["id"],)).fetchone()
    assert count == (1,)


async def test_same_id_at_another_mvno_is_a_separate_subscriber(
    client: httpx.AsyncClient, operator: Headers, mvno: dict[str, Any], other_mvno: dict[str, Any]
) -> None:
    number = resident_id()
    here = await create_subscriber(client, operator, mvno_id=mvno["id"], id_number=number)
    there = await create_subscriber(client, operator, mvno_id=other_mvno["id"], id_number=number)
    assert here["id"] != there["id"]
    found = await client.post(
        "/v1/subscribers/search", json={"id_type": "resident_id", "id_number": number}, headers=operator
    )
    assert {s["id"] for s in found.json()["items"]} == {here["id"], there["id"]}


async def test_operator_must_name_the_mvno(client: httpx.AsyncClient, operator: Headers) -> None:
    response = await client.post("/v1/subscribers", json=subscriber_body(), headers=operator)
    assert assert_problem(response, 422, "validation_error")["errors"][0]["loc"] == ["body", "mvno_id"]
    missing = await client.post(
        "/v1/subscribers", json=subscriber_body(mvno_id="mvno_nope"), headers=operator
    )
    assert_problem(missing, 404, "not_found")


async def test_partner_isolation_on_every_route(
    client: httpx.AsyncClient,
    operator: Headers,
    partner: Headers,
    other_mvno: dict[str, Any],
) -> None:
    number = resident_id()
    theirs = await create_subscriber(client, operator, mvno_id=other_mvno["id"], id_number=number)
    sid = theirs["id"]
    missing = await client.get("/v1/subscribers/sub_missing", headers=partner)
    hidden = await client.get(f"/v1/subscribers/{sid}", headers=partner)
    assert_problem(hidden, 404, "not_found")
    assert hidden.json()["detail"] == missing.json()["detail"].replace("sub_missing", sid)
    # Creating for another MVNO: that MVNO does not exist for the partner.
    assert_problem(
        await client.post("/v1/subscribers", json=subscriber_body(mvno_id=other_mvno["id"]), headers=partner),
        404,
        "not_found",
    )
    verification = {"method": "online_liveness", "result": "passed", "channel": "app"}
    assert_problem(
        await client.post(f"/v1/subscribers/{sid}/verifications", json=verification, headers=partner),
        404,
        "not_found",
    )
    assert_problem(
        await client.get(f"/v1/subscribers/{sid}/verifications", headers=partner), 404, "not_found"
    )
    query = {"id_type": "resident_id", "id_number": number}
    found = await client.post("/v1/subscribers/search", json=query, headers=partner)
    assert found.status_code == 200
    assert found.json()["items"] == []
    lookup = await client.post("/v1/identity-lookups", json=query, headers=partner)
    assert lookup.json() == {"total": 0, "by_mvno": [], "lines": []}
    # Its own subscriber with the same ID is all it sees.
    own = await create_subscriber(client, partner, id_number=number)
    found = await client.post("/v1/subscribers/search", json=query, headers=partner)
    assert [s["id"] for s in found.json()["items"]] == [own["id"]]
    lookup = await client.post("/v1/identity-lookups", json=query, headers=partner)
    assert [m["mvno_id"] for m in lookup.json()["by_mvno"]] == [own["mvno_id"]]


async def test_regulator_reads_and_looks_up_but_never_writes(
    client: httpx.AsyncClient, operator: Headers, regulator: Headers, mvno: dict[str, Any]
) -> None:
    number = resident_id()
    subscriber = await create_subscriber(client, operator, mvno_id=mvno["id"], id_number=number)
    created = await client.post(
        "/v1/subscribers", json=subscriber_body(mvno_id=mvno["id"]), headers=regulator
    )
    assert_problem(created, 403, "forbidden")
    verified = await client.post(
        f"/v1/subscribers/{subscriber['id']}/verifications",
        json={"method": "online_liveness", "result": "passed", "channel": "app"},
        headers=regulator,
    )
    assert_problem(verified, 403, "forbidden")
    assert (await client.get(f"/v1/subscribers/{subscriber['id']}", headers=regulator)).status_code == 200
    query = {"id_type": "resident_id", "id_number": number}
    found = await client.post("/v1/subscribers/search", json=query, headers=regulator)
    assert [s["id"] for s in found.json()["items"]] == [subscriber["id"]]
    lookup = await client.post("/v1/identity-lookups", json=query, headers=regulator)
    assert lookup.status_code == 200, lookup.text
    assert lookup.json()["by_mvno"] == [{"mvno_id": mvno["id"], "mvno_name": mvno["name"], "count": 0}]


async def test_verification_flips_status_and_keeps_history(
    client: httpx.AsyncClient, partner: Headers, raw: psycopg.Connection
) -> None:
    subscriber = await create_subscriber(client, partner)
    path = f"/v1/subscribers/{subscriber['id']}/verifications"
    failed = await client.post(
        path,
        json={"method": "online_liveness", "result": "failed", "score": 41.5, "channel": "app"},
        headers=partner,
    )
    assert failed.status_code == 201, failed.text
    assert failed.json()["real_name_status"] == "unverified"
    still = await client.get(f"/v1/subscribers/{subscriber['id']}", headers=partner)
    assert still.json()["real_name_status"] == "unverified"
    passed = await client.post(
        path,
        json={
            "method": "in_person_face_match",
            "result": "passed",
            "score": 98.2,
            "channel": "store:BJ-0042",
            "evidence_ref": "evidence/2026/11/abc",
        },
        headers=partner,
    )
    assert passed.status_code == 201, passed.text
    assert passed.json()["real_name_status"] == "verified"
    now = await client.get(f"/v1/subscribers/{subscriber['id']}", headers=partner)
    assert now.json()["real_name_status"] == "verified"
    assert now.json()["verified_at"] is not None
    history = await client.get(path, headers=partner)
    assert [(v["result"], v["real_name_status"]) for v in history.json()["items"]] == [
        ("failed", "unverified"),
        ("passed", "verified"),
    ]
    # A later failure is recorded but does not take the verification away.
    await client.post(
        path, json={"method": "online_liveness", "result": "failed", "channel": "app"}, headers=partner
    )
    assert (await client.get(f"/v1/subscribers/{subscriber['id']}", headers=partner)).json()[
        "real_name_status"
    ] == "verified"
    events = raw.execute(
        "SELECT type, data FROM events WHERE subject_id = %s ORDER BY seq", (subscriber["id"],)
    ).fetchall()
    # Every verification is told, the failed ones too (a change is always an event).
    assert [t for t, _ in events] == [
        "subscriber.created",
        "subscriber.verification_failed",
        "subscriber.verified",
        "subscriber.verification_failed",
    ]
    assert events[2][1]["status_changed"] is True
    actions = raw.execute(
        "SELECT action FROM audit_entries WHERE subject_id = %s", (subscriber["id"],)
    ).fetchall()
    assert sorted(a for (a,) in actions) == ["subscriber.created"] + ["subscriber.verification_recorded"] * 3


async def test_verification_inputs_are_checked(client: httpx.AsyncClient, partner: Headers) -> None:
    subscriber = await create_subscriber(client, partner)
    path = f"/v1/subscribers/{subscriber['id']}/verifications"
    wrong_method = await client.post(
        path,
        json={"method": "enterprise_registration", "result": "passed", "channel": "app"},
        headers=partner,
    )
    assert assert_problem(wrong_method, 422, "validation_error")["errors"][0]["loc"] == ["body", "method"]
    for bad in (
        {"method": "online_liveness", "result": "maybe", "channel": "app"},
        {"method": "online_liveness", "result": "passed", "channel": "app", "score": 101},
        {"method": "online_liveness", "result": "passed", "channel": ""},
        {"method": "online_liveness", "result": "passed"},
    ):
        assert_problem(await client.post(path, json=bad, headers=partner), 422, "validation_error")


async def test_identity_lookup_counts_live_lines_per_mvno(
    client: httpx.AsyncClient,
    operator: Headers,
    mvno: dict[str, Any],
    other_mvno: dict[str, Any],
    raw: psycopg.Connection,
) -> None:
    number = resident_id()
    here = await create_subscriber(client, operator, mvno_id=mvno["id"], id_number=number)
    there = await create_subscriber(client, operator, mvno_id=other_mvno["id"], id_number=number)
    await create_subscriber(client, operator, mvno_id=mvno["id"])  # someone else: never counted
    raw.execute("UPDATE subscribers SET live_lines = 2 WHERE id = %s", (here["id"],))
    raw.execute("UPDATE subscribers SET live_lines = 3 WHERE id = %s", (there["id"],))
    response = await client.post(
        "/v1/identity-lookups", json={"id_type": "resident_id", "id_number": number.lower()}, headers=operator
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 5
    assert sorted((m["mvno_id"], m["count"]) for m in body["by_mvno"]) == sorted(
        [(mvno["id"], 2), (other_mvno["id"], 3)]
    )
    assert {m["mvno_name"] for m in body["by_mvno"]} == {mvno["name"], other_mvno["name"]}
    assert body["lines"] == []
    # The counter cannot go below zero (the card cap will rely on it).
    with pytest.raises(psycopg.errors.CheckViolation):
        raw.execute("UPDATE subscribers SET live_lines = -1 WHERE id = %s", (here["id"],))
    bad = await client.post(
        "/v1/identity-lookups", json={"id_type": "resident_id", "id_number": "123"}, headers=operator
    )
    assert assert_problem(bad, 422, "validation_error")["errors"][0]["loc"] == ["body", "id_number"]


async def test_lookups_are_audited_masked(
    client: httpx.AsyncClient, regulator: Headers, raw: psycopg.Connection
) -> None:
    number = resident_id()
    request_id = f"lookup-{number[-6:]}"
    await client.post(
        "/v1/identity-lookups",
        json={"id_type": "resident_id", "id_number": number},
        headers={**regulator, "X-Request-ID": request_id},
    )
    row = raw.execute(
        "SELECT action, actor_role, data FROM audit_entries WHERE request_id = %s", (request_id,)
    ).fetchone()
    assert row is not None
    action, role, data = row
    assert (action, role) == ("identity.looked_up", "regulator")
    assert data["id_number_masked"] == number[:3] + "*" * 11 + number[-4:]
    assert number not in str(data)


async def test_events_reach_the_partners_feed_masked(
    client: httpx.AsyncClient, partner: Headers, db: Database
) -> None:
    number = resident_id()
    subscriber = await create_subscriber(client, partner, id_number=number, verified=True)
    await position_pending(db, 100_000)  # the server's feed sequencer does this within milliseconds
    items: list[dict[str, Any]] = []
    query = {"types": "subscriber.created,subscriber.verified", "limit": "500"}
    while True:  # the feed always hands out a cursor to poll with: stop at a short page
        page = (await client.get("/v1/events", params=query, headers=partner)).json()
        items += page["items"]
        if len(page["items"]) < 500:
            break
        query["after"] = page["next_cursor"]
    mine = [e for e in items if e["subject"]["id"] == subscriber["id"]]
    assert [e["type"] for e in mine] == ["subscriber.created", "subscriber.verified"]
    assert mine[0]["data"]["id_number_masked"] == number[:3] + "*" * 11 + number[-4:]
    assert mine[1]["data"]["real_name_status"] == "verified"
    assert number not in str(mine)


async def test_idempotent_replay_of_a_registration(client: httpx.AsyncClient, partner: Headers) -> None:
    body = subscriber_body()
    headers = {**partner, "Idempotency-Key": factories.unique_code("sub")}
    first = await client.post("/v1/subscribers", json=body, headers=headers)
    again = await client.post("/v1/subscribers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert body["id_number"] not in again.text
