"""What the console's history and audit pages show: a number's whole life (its reservations, lines,
holds, disputes, cancellation, quarantine release) newest first; the audit page's newest entries; and
nowhere a subscriber's name or ID number in clear."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from tests import factories
from tests.cancellations.helpers import body
from tests.conftest import ShiftableClock
from tests.console.conftest import Desk, page_token, sign_in

ACTION = re.compile(r"<td><code>([a-z_]+\.[a-z_]+)</code></td>")
FACT = re.compile(r"<dt>([^<]+)</dt><dd>(.*?)</dd>", re.S)
TAG = re.compile(r"<[^>]+>")


def facts_of(html: str) -> dict[str, str]:
    """The page's first facts list: label → text."""
    start = html.index('<dl class="facts">')
    block = html[start : html.index("</dl>", start)]
    return {label: TAG.sub("", value).strip() for label, value in FACT.findall(block)}


def stamp(rfc3339: str) -> str:
    """An API instant as the console prints it (UTC, to the second)."""
    return datetime.fromisoformat(rfc3339).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def test_a_numbers_history_is_its_whole_life(
    web: httpx.AsyncClient,
    client: httpx.AsyncClient,
    desk: Desk,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    assert desk.scene is not None
    partner, operator = desk.scene.partner, Desk.bearer(desk.operator)
    msisdn = desk.scene.number(2)
    await sign_in(web, desk.operator)
    reserved = await client.post("/v1/reservations", json={"msisdn": msisdn}, headers=partner)
    assert reserved.status_code == 201, reserved.text
    facts = facts_of((await web.get(f"/console/numbers?msisdn={msisdn}")).text)
    assert facts["预占至"] == stamp(reserved.json()["expires_at"])
    assert (facts["等级"], facts["基础运营商"]) == ("standard", "CMCC")
    released = await client.delete(f"/v1/reservations/{reserved.json()['id']}", headers=partner)
    assert released.status_code == 204
    activated = await desk.scene.activate(client, msisdn, subscriber_id=desk.subscriber_id)
    assert activated.status_code == 201, activated.text
    line_id = activated.json()["id"]
    disputed = await client.post(f"/v1/lines/{line_id}/disputes", json={}, headers=partner)
    assert disputed.status_code == 201, disputed.text
    resolved = await client.post(
        f"/v1/disputes/{disputed.json()['id']}/resolve", json={"outcome": "owner_confirmed"}, headers=operator
    )
    assert resolved.status_code == 200, resolved.text
    facts = facts_of((await web.get(f"/console/numbers?msisdn={msisdn}")).text)
    assert facts["线路"] == line_id
    cancelled = await client.post(f"/v1/lines/{line_id}/cancellations", json=body(), headers=partner)
    assert cancelled.status_code == 201, cancelled.text
    number = (await client.get(f"/v1/numbers/{msisdn}", headers=operator)).json()
    page = (await web.get(f"/console/numbers?msisdn={msisdn}")).text
    assert "status-quarantined" in page
    assert facts_of(page)["冷冻期至"] == stamp(number["quarantine_until"])
    clock.advance(days=settings.quarantine_days + 1)
    await sweeper.sweep_once(db, clock, settings)

    await sign_in(web, desk.operator)  # the session idled out meanwhile
    page = await web.get(f"/console/numbers?msisdn={msisdn}")
    actions = ACTION.findall(page.text)
    assert actions[0] == "number.released"
    assert actions[-2:] == ["reservation.released", "reservation.created"]
    for action in ("cancellation.completed", "line.cancelled", "dispute.resolved", "dispute.opened"):
        assert action in actions
    assert actions.index("cancellation.completed") < actions.index("dispute.opened")
    assert actions.index("dispute.opened") < actions.index("line.activated")
    # The line page tells the same story from activation to cancellation.
    line_actions = ACTION.findall((await web.get(f"/console/lines/{line_id}")).text)
    assert line_actions[0] == "cancellation.completed"
    assert line_actions[-1] == "line.activated"
    assert "dispute.opened" in line_actions


async def test_the_audit_page_shows_the_newest_entries(web: httpx.AsyncClient, desk: Desk) -> None:
    await sign_in(web, desk.operator)
    _, token = await page_token(web, f"/console/lines/{desk.line_id}")
    placed = await web.post(
        f"/console/lines/{desk.line_id}/holds", data={"csrf": token, "reason": "loss_report"}
    )
    assert placed.status_code == 303
    everything = await web.get("/console/audit")
    assert ACTION.findall(everything.text)[0] == "line.suspended"
    assert desk.line_id in everything.text.split("</tr>")[1]


async def test_no_page_shows_a_name_or_an_id_number_in_clear(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk
) -> None:
    assert desk.scene is not None
    name, id_number = "欧阳明远", factories.resident_id()
    person = await factories.create_subscriber(
        client, desk.scene.partner, verified=True, name=name, id_number=id_number
    )
    activated = await desk.scene.activate(client, desk.scene.number(3), subscriber_id=person["id"])
    assert activated.status_code == 201, activated.text
    line_id, msisdn = activated.json()["id"], activated.json()["msisdn"]

    await sign_in(web, desk.operator)
    _, token = await page_token(web, "/console/lookup")
    lookup = await web.post(
        "/console/lookup", data={"csrf": token, "id_type": "resident_id", "id_number": id_number}
    )
    assert f"{msisdn[:3]}****{msisdn[-4:]}" in lookup.text
    pages = [
        lookup,
        await web.get(f"/console/numbers?msisdn={msisdn}"),
        await web.get(f"/console/lines/{line_id}"),
        await web.get(f"/console/mvnos/{desk.mvno_id}"),
        await web.get(f"/console/audit?subject_kind=subscriber&subject_id={person['id']}"),
        await web.get("/console/audit?subject_kind=identity_query"),
        await web.get("/console/audit"),
    ]
    subscriber_audit = pages[4].text
    assert "subscriber.created" in subscriber_audit
    assert name[0] + "*" in subscriber_audit  # the masked name is what is journalled
    assert "identity.looked_up" in pages[5].text
    for page in pages:
        assert page.status_code == 200, page.text
        assert name not in page.text
        assert id_number not in page.text
        # Nor the ID's birth date and sequence, the part a masked number hides.
        assert id_number[6:14] not in page.text
