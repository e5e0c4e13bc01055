"""Settlement netting across a China-time month boundary; reclaim during quarantine (same person only);
quarantine release by the sweeper on the fake clock, and the recycled-number check after reissue."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from tests import factories
from tests.cancellations.helpers import account, body, events, line
from tests.factories import assert_problem
from tests.lines.conftest import Scene, iccid, imsi

CHINA = ZoneInfo("Asia/Shanghai")


async def _scene_in(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, provinces: list[str], province: str
) -> Scene:
    mvno = await factories.create_mvno(client, operator, licensed_provinces=provinces)
    block = await factories.allocate(client, operator, mvno["id"], segment="165", province=province)
    partner = factories.bearer(await factories.create_key(db, role="partner", mvno_id=mvno["id"]))
    subscriber = await factories.create_subscriber(client, partner, verified=True)
    return Scene(mvno["id"], block["prefix"], partner, {}, subscriber["id"])


def _month(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m")


async def _cancel(
    client: httpx.AsyncClient, scene: Scene, n: int, to: str, balance: int, arrears: int
) -> None:
    created = await line(client, scene, n)
    await account(client, scene, created["id"], balance=balance, arrears=arrears)
    response = await client.post(
        f"/v1/lines/{created['id']}/cancellations",
        json=body(to, arrears_paid_fen=arrears),
        headers=scene.partner,
    )
    assert response.status_code == 201, response.text


async def test_settlement_nets_per_pair_within_a_china_month(
    client: httpx.AsyncClient, operator: dict[str, str], regulator: dict[str, str], db: Database, clock: Any
) -> None:
    # Xinjiang (65) and Tibet (54): provinces no other test cancels between.
    xinjiang = await _scene_in(client, operator, db, ["65", "54"], "65")
    tibet = await _scene_in(client, operator, db, ["65", "54"], "54")
    # Half an hour before midnight in China at the end of this month (16:30 UTC on the last day).
    today = clock.now().astimezone(CHINA).date()
    next_month = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    boundary = datetime.combine(next_month, time.min, tzinfo=CHINA)
    clock.advance(seconds=(boundary - timedelta(minutes=30) - clock.now()).total_seconds())
    before = _month(clock.now())

    await _cancel(client, xinjiang, 0, "54", balance=1000, arrears=300)  # 65 owes 54: 1000 − 300
    await _cancel(client, tibet, 0, "65", balance=200, arrears=0)  # 54 owes 65: 200
    await _cancel(client, xinjiang, 1, "54", balance=5, arrears=0)
    clock.advance(hours=1)  # past midnight in China, still the same day in UTC
    after = _month(clock.now())
    assert after != before
    assert clock.now().astimezone(CHINA).day == 1
    await _cancel(client, xinjiang, 2, "54", balance=70, arrears=10)

    def ours(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
        return [
            item
            for item in report[key]
            if {
                item.get("from_province", item.get("payer_province")),
                item.get("to_province", item.get("payee_province")),
            }
            == {"54", "65"}
        ]

    first = (await client.get(f"/v1/settlements?month={before}", headers=operator)).json()
    assert ours(first, "pairs") == [
        {"from_province": "54", "to_province": "65", "entries": 1, "refund_fen": 200, "arrears_fen": 0},
        {"from_province": "65", "to_province": "54", "entries": 2, "refund_fen": 1005, "arrears_fen": 300},
    ]
    assert ours(first, "net") == [{"payer_province": "65", "payee_province": "54", "amount_fen": 505}]
    second = (await client.get(f"/v1/settlements?month={after}", headers=regulator)).json()
    assert ours(second, "pairs") == [
        {"from_province": "65", "to_province": "54", "entries": 1, "refund_fen": 70, "arrears_fen": 10}
    ]
    assert ours(second, "net") == [{"payer_province": "65", "payee_province": "54", "amount_fen": 60}]
    assert second["starts_at"] == first["ends_at"]
    # The month ends at midnight in China: 16:00 UTC the day before.
    assert datetime.fromisoformat(first["ends_at"]) == boundary


async def test_reclaim_by_the_same_person_only(
    client: httpx.AsyncClient,
    scene: Scene,
    other_scene: Scene,
    operator: dict[str, str],
    raw: psycopg.Connection,
) -> None:
    created = await line(client, scene, 40)
    msisdn = created["msisdn"]
    cancelled = await client.post(
        f"/v1/lines/{created['id']}/cancellations", json=body(), headers=scene.partner
    )
    assert cancelled.status_code == 201
    url = f"/v1/numbers/{msisdn}/reclaims"

    stranger = await factories.create_subscriber(client, scene.partner, verified=True)
    refused = await client.post(
        url, json={"subscriber_id": stranger["id"], "iccid": iccid(), "imsi": imsi()}, headers=scene.partner
    )
    assert_problem(refused, 409, "number_unavailable")
    # Another MVNO cannot even see the number.
    hidden = await client.post(
        url,
        json={"subscriber_id": other_scene.subscriber_id, "iccid": iccid(), "imsi": imsi()},
        headers=other_scene.partner,
    )
    assert_problem(hidden, 404, "not_found")
    wrong_host = await client.post(
        url,
        json={"subscriber_id": scene.subscriber_id, "iccid": iccid(), "imsi": imsi("01")},
        headers=scene.partner,
    )
    assert_problem(wrong_host, 422, "host_mismatch")

    keyed = {**scene.partner, "Idempotency-Key": f"reclaim-{msisdn}"}
    same = {"subscriber_id": scene.subscriber_id, "iccid": iccid(), "imsi": imsi()}
    reclaimed = await client.post(url, json=same, headers=keyed)
    assert reclaimed.status_code == 201, reclaimed.text
    replayed = await client.post(url, json=same, headers=keyed)
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == reclaimed.json()
    new_line = reclaimed.json()
    assert new_line["msisdn"] == msisdn
    assert new_line["id"] != created["id"]
    assert (new_line["status"], new_line["subscriber_id"]) == ("active", scene.subscriber_id)
    number = (await client.get(f"/v1/numbers/{msisdn}", headers=scene.partner)).json()
    assert (number["status"], number["line_id"]) == ("in_use", new_line["id"])
    again = await client.post(
        url,
        json={"subscriber_id": scene.subscriber_id, "iccid": iccid(), "imsi": imsi()},
        headers=scene.partner,
    )
    assert_problem(again, 409, "number_unavailable")
    assert raw.execute(
        "SELECT count(*) FROM audit_entries WHERE action = 'line.reclaimed' AND subject_id = %s",
        (new_line["id"],),
    ).fetchone() == (1,)


async def test_quarantine_ends_with_the_sweeper_and_the_number_reports_changed(
    client: httpx.AsyncClient, scene: Scene, db: Database, clock: Any, settings: Settings
) -> None:
    created = await line(client, scene, 50)
    msisdn = created["msisdn"]
    since = clock.now().astimezone(CHINA).date().isoformat()
    unchanged = (
        await client.get(f"/v1/numbers/{msisdn}/changes?since={since}", headers=scene.partner)
    ).json()
    assert unchanged["changed"] is False
    cancelled = await client.post(
        f"/v1/lines/{created['id']}/cancellations", json=body(), headers=scene.partner
    )
    assert cancelled.status_code == 201

    await sweeper.sweep_once(db, clock, settings)
    assert (await client.get(f"/v1/numbers/{msisdn}", headers=scene.partner)).json()[
        "status"
    ] == "quarantined"
    clock.advance(days=91)
    report = await sweeper.sweep_once(db, clock, settings)
    assert report.numbers_released >= 1
    number = (await client.get(f"/v1/numbers/{msisdn}", headers=scene.partner)).json()
    assert (number["status"], number.get("line_id")) == ("available", None)
    released = await events(client, db, scene.partner, "number.released")
    assert msisdn in [event["data"]["msisdn"] for event in released]

    # Too late to reclaim; anyone may take it now, and the platforms' check says the holder changed.
    late = await client.post(
        f"/v1/numbers/{msisdn}/reclaims",
        json={"subscriber_id": scene.subscriber_id, "iccid": iccid(), "imsi": imsi()},
        headers=scene.partner,
    )
    assert_problem(late, 409, "number_unavailable")
    newcomer = await factories.create_subscriber(client, scene.partner, verified=True)
    reissued = await scene.activate(client, msisdn, subscriber_id=newcomer["id"])
    assert reissued.status_code == 201, reissued.text
    changed = (await client.get(f"/v1/numbers/{msisdn}/changes?since={since}", headers=scene.partner)).json()
    assert changed["changed"] is True
    assert changed["last_cancelled_at"] is not None
