"""Holds as a stack, lift authority, the account, disputes and re-verification."""

from __future__ import annotations

import httpx
import psycopg

from tests.factories import assert_problem
from tests.lines.conftest import Scene


def _line_events(raw: psycopg.Connection, line_id: str) -> list[str]:
    rows = raw.execute(
        "SELECT type FROM events WHERE subject_id = %s AND type LIKE 'line.%%' ORDER BY occurred_at, seq",
        (line_id,),
    ).fetchall()
    return [t for (t,) in rows]


async def test_holds_stack_and_the_status_follows(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    line = await scene.line(client, 200)
    url = f"/v1/lines/{line['id']}"
    loss = await client.post(
        f"{url}/holds", json={"reason": "loss_report", "note": "phone lost"}, headers=scene.partner
    )
    assert loss.status_code == 201, loss.text
    assert loss.json()["reason_texts"] == {"zh": "挂失停机", "en": "Suspended after a report of loss"}
    assert loss.json()["placed_by_role"] == "partner"
    user = await client.post(f"{url}/holds", json={"reason": "user_request"}, headers=scene.partner)
    assert user.status_code == 201
    suspended = (await client.get(url, headers=scene.partner)).json()
    assert suspended["status"] == "suspended"
    assert suspended["open_holds"] == ["loss_report", "user_request"]
    duplicate = await client.post(f"{url}/holds", json={"reason": "user_request"}, headers=scene.partner)
    assert_problem(duplicate, 409, "conflict")
    assert duplicate.json()["existing_id"] == user.json()["id"]

    lifted = await client.post(f"{url}/holds/{loss.json()['id']}/lift", json={}, headers=scene.partner)
    assert lifted.status_code == 200
    assert lifted.json()["lifted_at"] is not None
    still = (await client.get(url, headers=scene.partner)).json()
    assert still["status"] == "suspended"
    assert still["open_holds"] == ["user_request"]
    await client.post(f"{url}/holds/{user.json()['id']}/lift", headers=scene.partner)
    assert (await client.get(url, headers=scene.partner)).json()["status"] == "active"
    again = await client.post(f"{url}/holds/{user.json()['id']}/lift", headers=scene.partner)
    assert_problem(again, 409, "illegal_transition")

    # Suspended and resumed once each, though two holds were placed and lifted.
    assert _line_events(raw, line["id"]) == ["line.activated", "line.suspended", "line.resumed"]
    holds = (await client.get(f"{url}/holds", headers=scene.partner)).json()["items"]
    assert [h["reason"] for h in holds] == ["loss_report", "user_request"]
    assert all(h["reason_text"] for h in holds)


async def test_partner_may_not_lift_regulatory_judicial_or_risk_holds(
    client: httpx.AsyncClient, operator: dict[str, str], scene: Scene
) -> None:
    line = await scene.line(client, 201)
    url = f"/v1/lines/{line['id']}"
    for reason in ("regulatory", "judicial", "risk_control"):
        hold = await client.post(f"{url}/holds", json={"reason": reason}, headers=operator)
        assert hold.status_code == 201
        refused = await client.post(f"{url}/holds/{hold.json()['id']}/lift", headers=scene.partner)
        assert_problem(refused, 403, "hold_lift_forbidden")
        assert (
            await client.post(f"{url}/holds/{hold.json()['id']}/lift", headers=operator)
        ).status_code == 200
    placed = await client.post(f"{url}/holds", json={"reason": "judicial"}, headers=scene.partner)
    assert_problem(placed, 403, "forbidden")


async def test_holds_are_scoped_and_regulator_reads_only(
    client: httpx.AsyncClient, regulator: dict[str, str], scene: Scene, other_scene: Scene
) -> None:
    line = await scene.line(client, 202)
    url = f"/v1/lines/{line['id']}"
    assert_problem(await client.get(url, headers=scene.other_partner), 404, "not_found")
    hidden = await client.post(f"{url}/holds", json={"reason": "user_request"}, headers=scene.other_partner)
    assert_problem(hidden, 404, "not_found")
    assert (await client.get(f"{url}/holds", headers=regulator)).status_code == 200
    write = await client.post(f"{url}/holds", json={"reason": "regulatory"}, headers=regulator)
    assert_problem(write, 403, "forbidden")


async def test_paid_arrears_lift_the_arrears_hold(client: httpx.AsyncClient, scene: Scene) -> None:
    line = await scene.line(client, 203)
    url = f"/v1/lines/{line['id']}"
    owing = {"balance_fen": 0, "arrears_fen": 5_000, "overdue_since": "2026-10-01"}
    account = await client.put(f"{url}/account", json=owing, headers=scene.partner)
    assert account.status_code == 200, account.text
    assert account.json()["account"]["arrears_fen"] == 5_000
    await client.post(f"{url}/holds", json={"reason": "arrears"}, headers=scene.partner)
    await client.post(f"{url}/holds", json={"reason": "user_request"}, headers=scene.partner)
    paid = await client.put(
        f"{url}/account", json={"balance_fen": 1_200, "arrears_fen": 0}, headers=scene.partner
    )
    assert paid.json()["open_holds"] == ["user_request"]
    assert paid.json()["account"] == {
        "balance_fen": 1_200,
        "arrears_fen": 0,
        "overdue_since": None,
        "updated_at": paid.json()["account"]["updated_at"],
    }
    bad = await client.put(
        f"{url}/account", json={"balance_fen": -1, "arrears_fen": 0}, headers=scene.partner
    )
    assert_problem(bad, 422, "validation_error")


async def test_dispute_owner_confirmed_lifts_the_risk_hold(
    client: httpx.AsyncClient, operator: dict[str, str], scene: Scene
) -> None:
    line = await scene.line(client, 204)
    dispute = await client.post(
        f"/v1/lines/{line['id']}/disputes", json={"note": "not mine"}, headers=operator
    )
    assert dispute.status_code == 201, dispute.text
    assert dispute.json()["status"] == "open"
    assert (await client.get(f"/v1/lines/{line['id']}", headers=operator)).json()["open_holds"] == [
        "risk_control"
    ]
    second = await client.post(f"/v1/lines/{line['id']}/disputes", json={}, headers=operator)
    assert_problem(second, 409, "conflict")
    by_partner = await client.post(
        f"/v1/disputes/{dispute.json()['id']}/resolve",
        json={"outcome": "owner_confirmed"},
        headers=scene.partner,
    )
    assert_problem(by_partner, 403, "forbidden")
    resolved = await client.post(
        f"/v1/disputes/{dispute.json()['id']}/resolve", json={"outcome": "owner_confirmed"}, headers=operator
    )
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "owner_confirmed"
    assert (await client.get(f"/v1/lines/{line['id']}", headers=operator)).json()["status"] == "active"


async def test_fraudulent_dispute_ends_the_line_and_quarantines_the_number(
    client: httpx.AsyncClient, operator: dict[str, str], scene: Scene, raw: psycopg.Connection
) -> None:
    line = await scene.line(client, 205)
    dispute = (await client.post(f"/v1/lines/{line['id']}/disputes", headers=scene.partner)).json()
    resolved = await client.post(
        f"/v1/disputes/{dispute['id']}/resolve", json={"outcome": "fraudulent"}, headers=operator
    )
    assert resolved.status_code == 200, resolved.text
    ended = (await client.get(f"/v1/lines/{line['id']}", headers=operator)).json()
    assert ended["status"] == "cancelled"
    assert ended["end_reason"] == "fraudulent"
    number = (await client.get(f"/v1/numbers/{line['msisdn']}", headers=operator)).json()
    assert number["status"] == "quarantined"
    assert number["quarantine_until"] is not None
    counter = raw.execute(
        "SELECT live_lines FROM subscribers WHERE id = %s", (scene.subscriber_id,)
    ).fetchone()
    assert counter == (0,)
    assert "line.cancelled" in _line_events(raw, line["id"])
    # The ended line no longer counts: the ID can take another line; its holds can no longer change.
    assert (await scene.activate(client, scene.number(206))).status_code == 201
    late = await client.post(
        f"/v1/lines/{line['id']}/holds", json={"reason": "user_request"}, headers=operator
    )
    assert_problem(late, 409, "illegal_transition")


async def test_a_passed_verification_satisfies_reverification(
    client: httpx.AsyncClient, scene: Scene, raw: psycopg.Connection
) -> None:
    line = await scene.line(client, 207)
    request = await client.post(
        f"/v1/lines/{line['id']}/reverification-requests",
        json={"reason": "risk model"},
        headers=scene.partner,
    )
    assert request.status_code == 201, request.text
    assert request.json()["status"] == "pending"
    verified = await client.post(
        f"/v1/subscribers/{scene.subscriber_id}/verifications",
        json={"method": "online_liveness", "result": "passed", "channel": "app"},
        headers=scene.partner,
    )
    assert verified.status_code == 201, verified.text
    status = raw.execute("SELECT status FROM reverification_requests WHERE id = %s", (request.json()["id"],))
    assert status.fetchone() == ("satisfied",)


async def test_hold_bodies_are_validated(client: httpx.AsyncClient, scene: Scene) -> None:
    line = await scene.line(client, 208)
    for body in ({"reason": "vacation"}, {"reason": "user_request", "extra": 1}, {}):
        response = await client.post(f"/v1/lines/{line['id']}/holds", json=body, headers=scene.partner)
        assert_problem(response, 422, "validation_error")
    missing = await client.post(
        "/v1/lines/lin_missing/holds", json={"reason": "user_request"}, headers=scene.partner
    )
    assert_problem(missing, 404, "not_found")
