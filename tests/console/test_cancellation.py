"""Cancellation and disputes from the console: the line page lists every blocker its records raise, a
refused cancellation shows every blocker together (the API's 409 ``blockers``), a dispute opened from
一证通查 is the API's own, and a cancellation that goes through writes the API's audit entries and
events. The regulator sees the blockers and nothing to press; its forged POST is refused."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from mvno_core.kernel.db import Database
from tests.cancellations.helpers import account, events
from tests.conftest import ShiftableClock
from tests.console.conftest import Desk, page_token, sign_in

CODES = re.compile(r'<li data-code="([a-z_]+)"')


def codes_in(html: str, list_id: str) -> list[str]:
    start = html.index(f'id="{list_id}"')
    return CODES.findall(html[start : html.index("</ul>", start)])


async def test_blockers_are_shown_together_then_the_line_is_cancelled(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk, db: Database, clock: ShiftableClock
) -> None:
    assert desk.scene is not None
    operator = Desk.bearer(desk.operator)
    contract_end = (clock.now().date() + timedelta(days=200)).isoformat()
    activated = await desk.scene.activate(
        client, desk.scene.number(1), subscriber_id=desk.subscriber_id, contract_end=contract_end
    )
    assert activated.status_code == 201, activated.text
    line_id = activated.json()["id"]
    await account(client, desk.scene, line_id, balance=300, arrears=1250)
    await sign_in(web, desk.operator)

    # "Not my card" from 一证通查: the lookup lists the line with its dispute button.
    _, token = await page_token(web, "/console/lookup")
    found = await web.post(
        "/console/lookup", data={"csrf": token, "id_type": "resident_id", "id_number": desk.id_number}
    )
    assert f'action="/console/lines/{line_id}/disputes"' in found.text
    disputed = await web.post(
        f"/console/lines/{line_id}/disputes", data={"csrf": token, "note": "本人未办理"}
    )
    assert disputed.status_code == 303
    disputes = (await client.get(f"/v1/lines/{line_id}", headers=operator)).json()
    assert disputes["open_holds"] == ["risk_control"]
    opened = [
        e for e in await events(client, db, operator, "dispute.opened") if e["data"]["line_id"] == line_id
    ]
    assert len(opened) == 1
    journal = (
        await client.get(
            f"/v1/audit?subject_kind=dispute&subject_id={opened[0]['subject']['id']}", headers=operator
        )
    ).json()["items"]
    assert [(e["action"], e["actor"]["role"], e["data"]["note"]) for e in journal] == [
        ("dispute.opened", "operator", "本人未办理")
    ]

    # Before anyone is at the counter: what the records block, together.
    page = await web.get(f"/console/lines/{line_id}")
    assert codes_in(page.text, "standing-blockers") == [
        "arrears_outstanding",
        "contract_active",
        "open_dispute",
    ]
    assert "12.50 元" in page.text
    assert contract_end in page.text

    # A refused cancellation: the page lists every blocker the API reported, in one go.
    form = {"csrf": token, "requested_province": "31", "identity_method": "in_person_face_match"}
    refused = await web.post(
        f"/console/lines/{line_id}/cancellations", data={**form, "identity_result": "failed"}
    )
    assert refused.status_code == 303
    shown = await web.get(refused.headers["location"])
    assert codes_in(shown.text, "blockers") == [
        "identity_not_verified",
        "arrears_outstanding",
        "contract_active",
        "open_dispute",
    ]
    assert "The line cannot be cancelled yet" in shown.text
    assert "欠费未缴清: 12.50 元" in shown.text
    line = (await client.get(f"/v1/lines/{line_id}", headers=operator)).json()
    assert line["status"] == "suspended"

    # Amounts are yuan with at most two decimals, converted exactly.
    bad = await web.post(
        f"/console/lines/{line_id}/cancellations",
        data={**form, "identity_result": "passed", "arrears_paid_yuan": "12.505"},
    )
    assert "arrears_paid_yuan is an amount in yuan" in (await web.get(bad.headers["location"])).text

    dispute_id = re.search(r"<code>(dsp_[0-9A-Z]+)</code>", page.text)
    assert dispute_id is not None
    resolved = await client.post(
        f"/v1/disputes/{dispute_id.group(1)}/resolve", json={"outcome": "owner_confirmed"}, headers=operator
    )
    assert resolved.status_code == 200, resolved.text
    cleared = {
        **form,
        "identity_result": "passed",
        "arrears_paid_yuan": "12.5",
        "accept_contract_penalty": "on",
    }
    done = await web.post(f"/console/lines/{line_id}/cancellations", data=cleared)
    page = await web.get(done.headers["location"])
    assert "操作成功" in page.text
    assert 'id="cancel-form"' not in page.text
    line = (await client.get(f"/v1/lines/{line_id}", headers=operator)).json()
    assert (line["status"], line["end_reason"]) == ("cancelled", "cancelled")
    completed = [
        e
        for e in await events(client, db, operator, "cancellation.completed")
        if e["data"]["line_id"] == line_id
    ]
    assert [
        (e["data"]["refund_fen"], e["data"]["arrears_settled_fen"], e["data"]["cross_province"])
        for e in completed
    ] == [(300, 1250, True)]
    cancellation_id = completed[0]["data"]["id"]
    journal = (
        await client.get(
            f"/v1/audit?subject_kind=cancellation&subject_id={cancellation_id}", headers=operator
        )
    ).json()["items"]
    assert [(e["action"], e["actor"]["role"]) for e in journal] == [("cancellation.completed", "operator")]
    assert any(e["data"]["line_id"] == line_id for e in await events(client, db, operator, "line.cancelled"))


async def test_the_regulator_sees_blockers_but_cannot_cancel(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk
) -> None:
    assert desk.scene is not None
    await account(client, desk.scene, desk.line_id, arrears=99)
    await sign_in(web, desk.regulator)
    page, token = await page_token(web, f"/console/lines/{desk.line_id}")
    assert codes_in(page.text, "standing-blockers") == ["arrears_outstanding"]
    assert 'id="cancel-form"' not in page.text
    forged = await web.post(
        f"/console/lines/{desk.line_id}/cancellations",
        data={
            "csrf": token,
            "requested_province": "11",
            "identity_method": "in_person_face_match",
            "identity_result": "passed",
            "arrears_paid_yuan": "0.99",
        },
    )
    assert forged.status_code == 403
    assert "The regulator role is read-only." in forged.text
    line = (await client.get(f"/v1/lines/{desk.line_id}", headers=Desk.bearer(desk.operator))).json()
    assert line["status"] == "active"
