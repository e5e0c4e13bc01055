"""Line timers on the fake clock: re-verification deadline, arrears hold, arrears termination; two
sweeps at once do each thing once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import psycopg

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from tests.lines.conftest import Scene


async def test_missed_reverification_deadline_places_a_hold_until_verified(
    client: httpx.AsyncClient, scene: Scene, clock: Any, db: Database, settings: Settings
) -> None:
    line = await scene.line(client, 300)
    url = f"/v1/lines/{line['id']}"
    request = await client.post(
        f"{url}/reverification-requests", json={"reason": "risk"}, headers=scene.partner
    )
    assert request.status_code == 201
    await sweeper.sweep_once(db, clock, settings)
    assert (await client.get(url, headers=scene.partner)).json()["status"] == "active"  # not due yet
    clock.advance(hours=24, seconds=1)
    await sweeper.sweep_once(db, clock, settings)
    suspended = (await client.get(url, headers=scene.partner)).json()
    assert suspended["open_holds"] == ["reverification"]
    # Overdue: no new activation for this ID until it re-verifies.
    refused = await scene.activate(client, scene.number(301))
    assert refused.json()["code"] == "real_name_unverified"
    verified = await client.post(
        f"/v1/subscribers/{scene.subscriber_id}/verifications",
        json={"method": "in_person_face_match", "result": "passed", "channel": "store"},
        headers=scene.partner,
    )
    assert verified.status_code == 201
    assert (await client.get(url, headers=scene.partner)).json()["status"] == "active"
    assert (await scene.activate(client, scene.number(301))).status_code == 201


async def test_arrears_hold_after_30_days_and_termination_after_60(
    client: httpx.AsyncClient,
    scene: Scene,
    clock: Any,
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    line = await scene.line(client, 310)
    url = f"/v1/lines/{line['id']}"
    today = clock.now().date()
    recent = {"balance_fen": 0, "arrears_fen": 900, "overdue_since": (today - timedelta(days=29)).isoformat()}
    await client.put(f"{url}/account", json=recent, headers=scene.partner)
    await sweeper.sweep_once(db, clock, settings)
    assert (await client.get(url, headers=scene.partner)).json()["open_holds"] == []
    clock.advance(days=2)
    await sweeper.sweep_once(db, clock, settings)
    held = (await client.get(url, headers=scene.partner)).json()
    assert held["open_holds"] == ["arrears"]
    clock.advance(days=59)
    await sweeper.sweep_once(db, clock, settings)
    assert (await client.get(url, headers=scene.partner)).json()["status"] == "suspended"
    clock.advance(days=1, seconds=1)
    await sweeper.sweep_once(db, clock, settings)
    ended = (await client.get(url, headers=scene.partner)).json()
    assert ended["status"] == "cancelled"
    assert ended["end_reason"] == "arrears_termination"
    number = (await client.get(f"/v1/numbers/{line['msisdn']}", headers=scene.partner)).json()
    assert number["status"] == "quarantined"
    assert raw.execute(
        "SELECT live_lines FROM subscribers WHERE id = %s", (scene.subscriber_id,)
    ).fetchone() == (0,)


async def test_two_sweeps_at_once_do_each_thing_once(
    client: httpx.AsyncClient,
    scene: Scene,
    clock: Any,
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    lines = [await scene.line(client, 320 + i) for i in range(5)]
    overdue = {
        "balance_fen": 0,
        "arrears_fen": 100,
        "overdue_since": (clock.now().date() - timedelta(days=40)).isoformat(),
    }
    for line in lines:
        await client.put(f"/v1/lines/{line['id']}/account", json=overdue, headers=scene.partner)
    await asyncio.gather(*(sweeper.sweep_once(db, clock, settings) for _ in range(2)))
    ids = [line["id"] for line in lines]
    holds = raw.execute(
        "SELECT line_id, count(*) FROM line_holds WHERE line_id = ANY(%s) AND reason = 'arrears' "
        "GROUP BY line_id",
        (ids,),
    ).fetchall()
    assert sorted(holds) == sorted((line_id, 1) for line_id in ids)
    placed = raw.execute(
        "SELECT count(*) FROM events WHERE type = 'hold.placed' AND subject_id = ANY(%s)", (ids,)
    ).fetchone()
    assert placed == (5,)
    suspended = raw.execute(
        "SELECT count(*) FROM events WHERE type = 'line.suspended' AND subject_id = ANY(%s)", (ids,)
    ).fetchone()
    assert suspended == (5,)
