"""Safe reissue: ended quarantines wait in a batch pushed to every recycling platform, and become available
only once all acknowledged or the deadline passed. Real receivers on 127.0.0.1, real sweeps on the fake
clock; signatures checked by the independent ``standardwebhooks`` package."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import psycopg
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mvno_core.events.sequencer import position_pending
from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from tests.cancellations.helpers import events
from tests.conftest import ShiftableClock
from tests.lines.conftest import Scene
from tests.recycling.conftest import quarantined_number, register
from tests.webhooks.conftest import Receiver


def batch_of(raw: psycopg.Connection, msisdn: str) -> str | None:
    """The pending batch a number waits in (None once released)."""
    row = raw.execute("SELECT reissue_batch_id FROM numbers WHERE msisdn = %s", (msisdn,)).fetchone()
    assert row is not None
    return row[0]


async def number(client: httpx.AsyncClient, scene: Scene, msisdn: str) -> dict[str, Any]:
    response = await client.get(f"/v1/numbers/{msisdn}", headers=scene.partner)
    assert response.status_code == 200, response.text
    read: dict[str, Any] = response.json()
    return read


def requests_for(receiver: Receiver, batch_id: str) -> list[Any]:
    return [r for r in receiver.requests if r.headers["webhook-id"] == batch_id]


async def test_released_only_after_every_platform_acknowledged(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    regulator: dict[str, str],
    scene: Scene,
    receiver: Receiver,
    other_receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    big_batches: Settings,
    raw: psycopg.Connection,
) -> None:
    msisdn = await quarantined_number(client, scene, 10)
    first = await register(client, operator, receiver.url)
    second = await register(client, operator, other_receiver.url)
    other_receiver.status = 503  # the second platform is down at first

    clock.advance(days=91)
    report = await sweeper.sweep_once(db, clock, big_batches)
    batch_id = batch_of(raw, msisdn)
    assert batch_id is not None
    assert report.reissue.batches_formed == 1
    # Pushed to both; one acknowledged, so the number is still quarantined (not claimable, not reclaimable).
    assert len(requests_for(receiver, batch_id)) == 1
    assert len(requests_for(other_receiver, batch_id)) == 1
    held = await number(client, scene, msisdn)
    assert held["status"] == "quarantined"
    assert held["reissued_at"] is None
    taken = await scene.activate(client, msisdn)
    assert taken.status_code == 409
    assert taken.json()["code"] == "number_unavailable"

    batch = (await client.get(f"/v1/recycling-batches/{batch_id}", headers=regulator)).json()
    assert batch["status"] == "pending"
    assert msisdn in [n["msisdn"] for n in batch["numbers"]]
    deliveries = {d["platform_id"]: d for d in batch["deliveries"]}
    assert deliveries[first["id"]]["status"] == "acknowledged"
    assert deliveries[second["id"]]["status"] == "pending"
    assert deliveries[second["id"]]["last_status_code"] == 503

    # A sweep before the retry is due sends nothing and releases nothing.
    await sweeper.sweep_once(db, clock, big_batches)
    assert batch_of(raw, msisdn) == batch_id

    other_receiver.status = 200
    clock.advance(minutes=5)
    report = await sweeper.sweep_once(db, clock, big_batches)
    assert batch_of(raw, msisdn) is None
    released = await number(client, scene, msisdn)
    assert released["status"] == "available"
    assert released["reissued_at"] is not None
    batch = (await client.get(f"/v1/recycling-batches/{batch_id}", headers=operator)).json()
    assert (batch["status"], batch["release_reason"]) == ("released", "acknowledged")
    assert {d["status"] for d in batch["deliveries"]} == {"acknowledged"}
    # The acknowledged platform was not sent the batch again.
    assert len(requests_for(receiver, batch_id)) == 1
    assert len(requests_for(other_receiver, batch_id)) == 2

    # Journal: the batch's creation, two acknowledgements, its release; the number's release event.
    actions = [
        row[0]
        for row in raw.execute(
            "SELECT action FROM audit_entries WHERE subject_id = %s ORDER BY recorded_at, action", (batch_id,)
        )
    ]
    assert sorted(actions) == sorted(
        [
            "recycling_batch.created",
            "recycling_batch.acknowledged",
            "recycling_batch.acknowledged",
            "recycling_batch.released",
        ]
    )
    released_events = [
        e for e in await events(client, db, scene.partner, "number.released") if e["data"]["msisdn"] == msisdn
    ]
    assert len(released_events) == 1
    assert released_events[0]["data"]["reissue_batch_id"] == batch_id
    assert released_events[0]["data"]["reissue_release_reason"] == "acknowledged"

    # Anyone may take the number now.
    assert (await scene.activate(client, msisdn)).status_code == 201


async def test_deadline_releases_without_the_silent_platform_and_retries_are_counted(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    receiver: Receiver,
    other_receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    big_batches: Settings,
    raw: psycopg.Connection,
) -> None:
    msisdn = await quarantined_number(client, scene, 11)
    healthy = await register(client, operator, receiver.url)
    failing = await register(client, operator, other_receiver.url)
    other_receiver.status = 500

    clock.advance(days=91)
    await sweeper.sweep_once(db, clock, big_batches)
    batch_id = batch_of(raw, msisdn)
    assert batch_id is not None
    for _ in range(3):
        clock.advance(hours=2)  # past every backoff step so far
        await sweeper.sweep_once(db, clock, big_batches)
    attempts = len(requests_for(other_receiver, batch_id))
    assert attempts == 4
    batch = (await client.get(f"/v1/recycling-batches/{batch_id}", headers=operator)).json()
    deliveries = {d["platform_id"]: d for d in batch["deliveries"]}
    # The failing platform's retries did not hold the healthy one's acknowledgement.
    assert deliveries[healthy["id"]]["status"] == "acknowledged"
    assert deliveries[healthy["id"]]["attempts"] == 1
    assert deliveries[failing["id"]]["attempts"] == attempts
    assert deliveries[failing["id"]]["next_attempt_at"] is not None
    assert batch["status"] == "pending"
    assert (await number(client, scene, msisdn))["status"] == "quarantined"

    clock.advance(hours=big_batches.recycling_ack_deadline_hours)
    await sweeper.sweep_once(db, clock, big_batches)
    released = await number(client, scene, msisdn)
    assert (released["status"], released["reissued_at"] is not None) == ("available", True)
    batch = (await client.get(f"/v1/recycling-batches/{batch_id}", headers=operator)).json()
    assert (batch["status"], batch["release_reason"]) == ("released", "deadline")
    deliveries = {d["platform_id"]: d for d in batch["deliveries"]}
    assert deliveries[failing["id"]]["status"] == "expired"
    assert deliveries[failing["id"]]["next_attempt_at"] is None
    assert deliveries[healthy["id"]]["status"] == "acknowledged"
    entry = raw.execute(
        "SELECT data FROM audit_entries WHERE subject_id = %s AND action = 'recycling_batch.released'",
        (batch_id,),
    ).fetchone()
    assert entry is not None
    assert entry[0]["reason"] == "deadline"
    assert entry[0]["unacknowledged_platform_ids"] == [failing["id"]]
    # No more attempts once the batch is released.
    sent = len(other_receiver.requests)
    clock.advance(hours=2)
    await sweeper.sweep_once(db, clock, big_batches)
    assert len(other_receiver.requests) == sent


async def test_deliveries_are_signed_standard_webhooks(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    big_batches: Settings,
    raw: psycopg.Connection,
) -> None:
    msisdn = await quarantined_number(client, scene, 12)
    platform = await register(client, operator, receiver.url)
    assert platform["secret"].startswith("whsec_")
    clock.advance(days=91)
    await sweeper.sweep_once(db, clock, big_batches)
    [got] = [r for r in receiver.requests if msisdn.encode() in r.body]
    payload = Webhook(platform["secret"]).verify(got.body, got.headers)
    assert payload["type"] == "numbers.recycling"
    assert got.headers["webhook-id"] == payload["data"]["batch_id"]
    pushed = {n["msisdn"]: n for n in payload["data"]["numbers"]}
    assert pushed[msisdn]["phone_number"] == "+86" + msisdn
    assert pushed[msisdn]["last_cancelled_at"] is not None
    # A changed body, or another secret, does not verify.
    tampered = json.loads(got.body)
    tampered["data"]["numbers"] = []
    with pytest.raises(WebhookVerificationError):
        Webhook(platform["secret"]).verify(json.dumps(tampered).encode(), got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(got.body, got.headers)
    sealed = raw.execute(
        "SELECT secret_sealed FROM recycling_platforms WHERE id = %s", (platform["id"],)
    ).fetchone()
    assert sealed is not None
    assert platform["secret"].encode() not in bytes(sealed[0])


async def test_two_concurrent_sweeps_batch_deliver_and_release_each_number_once(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    big_batches: Settings,
    raw: psycopg.Connection,
) -> None:
    numbers = [await quarantined_number(client, scene, n) for n in range(20, 26)]
    await register(client, operator, receiver.url)
    clock.advance(days=91)
    await asyncio.gather(
        sweeper.sweep_once(db, clock, big_batches), sweeper.sweep_once(db, clock, big_batches)
    )
    # Two batches may form (one per sweep) but never share a number; each batch sent once.
    batch_ids = {
        row[0]
        for row in raw.execute(
            "SELECT id FROM recycling_batches WHERE numbers @> ANY(%s::jsonb[])",
            ([json.dumps([{"msisdn": m}]) for m in numbers],),
        )
    }
    assert 1 <= len(batch_ids) <= 2
    listed = [
        n["msisdn"]
        for batch_id in batch_ids
        for n in raw.execute("SELECT numbers FROM recycling_batches WHERE id = %s", (batch_id,)).fetchone()[0]
    ]
    assert sorted(m for m in listed if m in numbers) == sorted(numbers)
    for batch_id in batch_ids:
        assert len(requests_for(receiver, batch_id)) == 1
    # Released too (the only platform acknowledged at once), each number once.
    await asyncio.gather(
        sweeper.sweep_once(db, clock, big_batches), sweeper.sweep_once(db, clock, big_batches)
    )
    for msisdn in numbers:
        assert (await number(client, scene, msisdn))["status"] == "available"
    await position_pending(db, 100_000)
    released = raw.execute(
        "SELECT subject_id, count(*) FROM events WHERE type = 'number.released' AND subject_id = ANY(%s) "
        "GROUP BY subject_id",
        (numbers,),
    ).fetchall()
    assert sorted(released) == sorted((m, 1) for m in numbers)
    for batch_id in batch_ids:
        assert raw.execute(
            "SELECT count(*) FROM audit_entries WHERE subject_id = %s "
            "AND action = 'recycling_batch.released'",
            (batch_id,),
        ).fetchone() == (1,)


async def test_without_platforms_release_is_direct_and_marks_reissued_at(
    client: httpx.AsyncClient,
    scene: Scene,
    db: Database,
    clock: ShiftableClock,
    big_batches: Settings,
    raw: psycopg.Connection,
) -> None:
    msisdn = await quarantined_number(client, scene, 13)
    fresh = await number(client, scene, scene.number(14))
    assert fresh["reissued_at"] is None  # never used: not a reissue
    clock.advance(days=91)
    report = await sweeper.sweep_once(db, clock, big_batches)
    assert report.reissue.batches_formed == 0
    released = await number(client, scene, msisdn)
    assert released["status"] == "available"
    assert released["reissued_at"] is not None
    assert batch_of(raw, msisdn) is None
    # Partners see it in searches too.
    params = {"pattern": msisdn, "mvno_id": scene.mvno_id}
    page = (await client.get("/v1/numbers", params=params, headers=scene.partner)).json()
    assert page["items"][0]["reissued_at"] == released["reissued_at"]


async def test_deactivating_the_last_silent_platform_lets_its_batch_go(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    big_batches: Settings,
    raw: psycopg.Connection,
) -> None:
    msisdn = await quarantined_number(client, scene, 15)
    platform = await register(client, operator, receiver.url)
    receiver.status = 500
    clock.advance(days=91)
    await sweeper.sweep_once(db, clock, big_batches)
    batch_id = batch_of(raw, msisdn)
    assert batch_id is not None
    gone = await client.delete(f"/v1/recycling-platforms/{platform['id']}", headers=operator)
    assert gone.status_code == 204
    await sweeper.sweep_once(db, clock, big_batches)
    assert (await number(client, scene, msisdn))["status"] == "available"
    batch = (await client.get(f"/v1/recycling-batches/{batch_id}", headers=operator)).json()
    assert batch["release_reason"] == "acknowledged"
    assert [d["status"] for d in batch["deliveries"]] == ["abandoned"]
