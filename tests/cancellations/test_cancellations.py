"""Cancellation from any province: identical outcomes home and away, every blocker alone and together,
scoping, regulator read-only, idempotent replay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import psycopg

from mvno_core.kernel.db import Database
from tests.cancellations.helpers import account, body, events, line
from tests.factories import assert_problem
from tests.lines.conftest import Scene, iccid, imsi


def _outcome(raw: psycopg.Connection, line_id: str) -> dict[str, Any]:
    row = raw.execute(
        "SELECT l.status, l.end_reason, l.balance_fen, l.arrears_fen, n.status, n.line_id = l.id, "
        "n.quarantine_until - l.ended_at, n.last_cancelled_at = l.ended_at "
        "FROM lines l JOIN numbers n ON n.msisdn = l.msisdn WHERE l.id = %s",
        (line_id,),
    ).fetchone()
    assert row is not None
    keys = ("status", "end_reason", "balance", "arrears", "number", "number_line", "quarantine", "stamped")
    return dict(zip(keys, row, strict=True))


async def test_home_and_cross_province_cancellations_have_identical_outcomes(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection, db: Database
) -> None:
    home, away = await line(client, scene, 0), await line(client, scene, 1)
    for created in (home, away):
        await account(client, scene, created["id"], balance=1234)
    live_before = raw.execute(
        "SELECT live_lines FROM subscribers WHERE id = %s", (scene.subscriber_id,)
    ).fetchone()

    done = {}
    for created, province in ((home, "11"), (away, "31")):
        response = await client.post(
            f"/v1/lines/{created['id']}/cancellations", json=body(province), headers=scene.partner
        )
        assert response.status_code == 201, response.text
        assert response.headers["location"] == f"/v1/cancellations/{response.json()['id']}"
        done[province] = response.json()
    for province, cross in (("11", False), ("31", True)):
        got = done[province]
        assert got["status"] == "completed"
        assert (got["home_province"], got["requested_province"]) == ("11", province)
        assert got["cross_province"] is cross
        assert (got["refund_fen"], got["arrears_settled_fen"], got["penalty_accepted"]) == (1234, 0, False)
        fetched = await client.get(f"/v1/cancellations/{got['id']}", headers=scene.partner)
        assert fetched.json() == got

    expected = {
        "status": "cancelled",
        "end_reason": "cancelled",
        "balance": 0,
        "arrears": 0,
        "number": "quarantined",
        "number_line": True,
        "quarantine": timedelta(days=90),
        "stamped": True,
    }
    assert _outcome(raw, home["id"]) == _outcome(raw, away["id"]) == expected
    live_after = raw.execute(
        "SELECT live_lines FROM subscribers WHERE id = %s", (scene.subscriber_id,)
    ).fetchone()
    assert live_before is not None
    assert live_after == (live_before[0] - 2,)

    # Only the cross-province one leaves a settlement entry (home → requested).
    entries = raw.execute(
        "SELECT cancellation_id, from_province, to_province, refund_fen, arrears_fen FROM settlement_entries "
        "WHERE cancellation_id = ANY(%s)",
        ([done["11"]["id"], done["31"]["id"]],),
    ).fetchall()
    assert entries == [(done["31"]["id"], "11", "31", 1234, 0)]

    feed = await events(client, db, scene.partner, "line.cancelled,cancellation.completed")
    subjects = {(event["type"], event["subject"]["id"]) for event in feed}
    for created, province in ((home, "11"), (away, "31")):
        assert ("line.cancelled", created["id"]) in subjects
        assert ("cancellation.completed", done[province]["id"]) in subjects
    # Ended: a second cancellation is an illegal transition.
    again = await client.post(f"/v1/lines/{home['id']}/cancellations", json=body(), headers=scene.partner)
    assert assert_problem(again, 409, "illegal_transition")["current_status"] == "cancelled"


async def test_each_blocker_alone_then_all_four_together(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection, clock: Any
) -> None:
    # The service's today, not the machine's: other tests move the shared clock years ahead.
    contract_end = (clock.now().date() + timedelta(days=400)).isoformat()

    async def blockers_of(line_id: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        response = await client.post(f"/v1/lines/{line_id}/cancellations", json=data, headers=scene.partner)
        problem = assert_problem(response, 409, "cancellation_blocked")
        result: list[dict[str, Any]] = problem["blockers"]
        return result

    failed = {"method": "online_liveness", "result": "failed"}
    identity = await line(client, scene, 10)
    assert await blockers_of(identity["id"], body(identity_check=failed)) == [
        {"code": "identity_not_verified"}
    ]

    arrears = await line(client, scene, 11)
    await account(client, scene, arrears["id"], balance=90, arrears=500)
    assert await blockers_of(arrears["id"], body()) == [{"code": "arrears_outstanding", "amount_fen": 500}]
    assert await blockers_of(arrears["id"], body(arrears_paid_fen=200)) == [
        {"code": "arrears_outstanding", "amount_fen": 300}
    ]

    contract = await line(client, scene, 12, contract_end=contract_end)
    assert await blockers_of(contract["id"], body()) == [
        {"code": "contract_active", "contract_end": contract_end}
    ]

    disputed = await line(client, scene, 13)
    dispute = await client.post(f"/v1/lines/{disputed['id']}/disputes", json={}, headers=scene.partner)
    assert dispute.status_code == 201
    assert await blockers_of(disputed["id"], body()) == [
        {"code": "open_dispute", "dispute_id": dispute.json()["id"]}
    ]

    everything = await line(client, scene, 14, contract_end=contract_end)
    await account(client, scene, everything["id"], arrears=70)
    dispute = await client.post(f"/v1/lines/{everything['id']}/disputes", json={}, headers=scene.partner)
    assert [b["code"] for b in await blockers_of(everything["id"], body(identity_check=failed))] == [
        "identity_not_verified",
        "arrears_outstanding",
        "contract_active",
        "open_dispute",
    ]
    # Blocked means nothing happened.
    assert raw.execute("SELECT status FROM lines WHERE id = %s", (everything["id"],)).fetchone() == (
        "suspended",
    )
    assert raw.execute(
        "SELECT count(*) FROM cancellations WHERE line_id = ANY(%s)",
        ([identity["id"], arrears["id"], contract["id"], disputed["id"], everything["id"]],),
    ).fetchone() == (0,)

    # Cleared: arrears paid in full, the contract penalty accepted.
    paid = await client.post(
        f"/v1/lines/{arrears['id']}/cancellations", json=body(arrears_paid_fen=500), headers=scene.partner
    )
    assert paid.status_code == 201, paid.text
    assert (paid.json()["refund_fen"], paid.json()["arrears_settled_fen"]) == (90, 500)
    accepted = await client.post(
        f"/v1/lines/{contract['id']}/cancellations",
        json=body(accept_contract_penalty=True),
        headers=scene.partner,
    )
    assert accepted.status_code == 201
    assert accepted.json()["penalty_accepted"] is True


async def test_scoping_regulator_and_idempotent_replay(
    client: httpx.AsyncClient, scene: Scene, other_scene: Scene, regulator: dict[str, str]
) -> None:
    created = await line(client, scene, 20)
    url = f"/v1/lines/{created['id']}/cancellations"
    assert_problem(await client.post(url, json=body(), headers=other_scene.partner), 404, "not_found")
    assert_problem(await client.post(url, json=body(), headers=regulator), 403, "forbidden")
    assert_problem(
        await client.post(url, json={**body(), "refund_to": "x"}, headers=scene.partner),
        422,
        "validation_error",
    )
    assert_problem(await client.post(url, json=body("99"), headers=scene.partner), 422, "validation_error")

    headers = {**scene.partner, "Idempotency-Key": f"cancel-{created['id']}"}
    first = await client.post(url, json=body("44"), headers=headers)
    replay = await client.post(url, json=body("44"), headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["location"] == first.headers["location"]

    cancellation = f"/v1/cancellations/{first.json()['id']}"
    assert_problem(await client.get(cancellation, headers=other_scene.partner), 404, "not_found")
    assert (await client.get(cancellation, headers=regulator)).status_code == 200
    assert_problem(await client.get("/v1/settlements?month=2026-11", headers=scene.partner), 403, "forbidden")
    assert (await client.get("/v1/settlements?month=2026-11", headers=regulator)).status_code == 200
    assert_problem(
        await client.get("/v1/settlements?month=2026-13", headers=regulator), 422, "validation_error"
    )


async def test_concurrent_cancellations_and_reclaims_happen_once(
    client: httpx.AsyncClient, scene: Scene, regulator: dict[str, str], raw: psycopg.Connection
) -> None:
    created = await line(client, scene, 30)
    url = f"/v1/lines/{created['id']}/cancellations"
    answers = await asyncio.gather(
        *(client.post(url, json=body(province), headers=scene.partner) for province in ("11", "31", "44"))
    )
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409]
    assert raw.execute(
        "SELECT count(*) FROM cancellations WHERE line_id = %s", (created["id"],)
    ).fetchone() == (1,)

    reclaim = f"/v1/numbers/{created['msisdn']}/reclaims"

    def reclaim_body() -> dict[str, Any]:
        return {"subscriber_id": scene.subscriber_id, "iccid": iccid(), "imsi": imsi()}

    assert_problem(await client.post(reclaim, json=reclaim_body(), headers=regulator), 403, "forbidden")
    answers = await asyncio.gather(
        *(client.post(reclaim, json=reclaim_body(), headers=scene.partner) for _ in range(3))
    )
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409]
    assert raw.execute(
        "SELECT count(*) FROM lines WHERE msisdn = %s AND status <> 'cancelled'", (created["msisdn"],)
    ).fetchone() == (1,)
