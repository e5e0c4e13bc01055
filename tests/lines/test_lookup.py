"""一证通查 lists the person's live lines, masked, in the caller's scope."""

from __future__ import annotations

import httpx

from tests import factories
from tests.lines.conftest import Scene


async def test_identity_lookup_lists_live_lines_across_mvnos(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    regulator: dict[str, str],
    scene: Scene,
    other_scene: Scene,
) -> None:
    id_number = factories.resident_id()
    mine = await factories.create_subscriber(client, scene.partner, verified=True, id_number=id_number)
    theirs = await factories.create_subscriber(
        client, other_scene.partner, verified=True, id_number=id_number
    )
    first = (await scene.activate(client, scene.number(400), subscriber_id=mine["id"])).json()
    second = (await scene.activate(client, scene.number(401), subscriber_id=mine["id"])).json()
    third = (await scene.activate(client, scene.number(402), subscriber_id=mine["id"])).json()
    elsewhere = await other_scene.activate(client, other_scene.number(400), subscriber_id=theirs["id"])
    elsewhere_id = elsewhere.json()["id"]
    # A suspended line is still the person's; an ended one no longer is.
    await client.post(f"/v1/lines/{second['id']}/disputes", headers=operator)
    dispute = (await client.post(f"/v1/lines/{third['id']}/disputes", headers=operator)).json()
    resolved = await client.post(
        f"/v1/disputes/{dispute['id']}/resolve", json={"outcome": "fraudulent"}, headers=operator
    )
    assert resolved.status_code == 200

    query = {"id_type": "resident_id", "id_number": id_number}
    for caller in (operator, regulator):
        answer = (await client.post("/v1/identity-lookups", json=query, headers=caller)).json()
        assert answer["total"] == 3
        assert sorted(m["count"] for m in answer["by_mvno"]) == [1, 2]
        assert {line["line_id"] for line in answer["lines"]} == {first["id"], second["id"], elsewhere_id}
        statuses = {line["line_id"]: line["status"] for line in answer["lines"]}
        assert statuses[second["id"]] == "suspended"
        masked = {line["msisdn_masked"] for line in answer["lines"]}
        assert f"{first['msisdn'][:3]}****{first['msisdn'][-4:]}" in masked
        assert first["msisdn"] not in str(answer)

    partner_view = (await client.post("/v1/identity-lookups", json=query, headers=scene.partner)).json()
    assert partner_view["total"] == 2
    assert {line["line_id"] for line in partner_view["lines"]} == {first["id"], second["id"]}
