"""Webhook deliveries against a real receiver on 127.0.0.1, signatures checked by the independent
``standardwebhooks`` package."""

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
from mvno_core.webhooks import worker
from tests import factories
from tests.conftest import ShiftableClock
from tests.webhooks.conftest import Receiver, free_port


async def register(
    client: httpx.AsyncClient, headers: dict[str, str], url: str, **body: Any
) -> dict[str, Any]:
    # Events committed before but positioned after the endpoint exists are sent to it too (its cursor
    # starts at the head positioned so far): position what earlier steps wrote, for exact counts.
    db: Database = client._transport.app.state.db  # type: ignore[attr-defined]
    await position_pending(db, 100_000)
    response = await client.post("/v1/webhook-endpoints", json={"url": url, **body}, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliver(db: Database, clock: ShiftableClock, settings: Settings) -> worker.DeliveryReport:
    await position_pending(db, 100_000)
    return await worker.deliver_once(db, clock, settings)


def verify(secret: str, received: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


async def test_signature_verifies_with_standardwebhooks_and_a_tampered_body_does_not(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    endpoint = await register(client, partner, receiver.url)
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    report = await deliver(db, clock, settings)
    assert report.delivered == 1
    [got] = receiver.requests
    payload = verify(secret, got)
    assert payload["type"] == "webhook_endpoint.created"
    assert payload["data"]["subject"] == {"kind": "webhook_endpoint", "id": endpoint["id"]}
    assert got.headers["webhook-id"] == payload["data"]["id"]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body.replace(b"webhook_endpoint", b"webhook_endpoinT"), got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(got.body, got.headers)
    # The secret is sealed at rest and never shown again.
    sealed = raw.execute(
        "SELECT secret_sealed FROM webhook_endpoints WHERE id = %s", (endpoint["id"],)
    ).fetchone()
    assert sealed is not None
    assert secret.encode() not in bytes(sealed[0])
    shown = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=partner)
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    log = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=partner)).json()
    assert [(d["event_id"], d["succeeded"], d["status_code"]) for d in log["items"]] == [
        (got.headers["webhook-id"], True, 200)
    ]


async def test_idempotent_replay_of_create_does_not_carry_the_secret(
    client: httpx.AsyncClient, partner: dict[str, str], mvno: dict[str, Any], receiver: Receiver
) -> None:
    headers = {**partner, "Idempotency-Key": "wh-create-1"}
    first = await client.post("/v1/webhook-endpoints", json={"url": receiver.url}, headers=headers)
    again = await client.post("/v1/webhook-endpoints", json={"url": receiver.url}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["secret"].startswith("whsec_")
    assert again.json()["secret"] == "<shown once; not stored>"
    assert again.json()["id"] == first.json()["id"]


async def test_rotation_signs_with_both_secrets_during_the_grace_period(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    endpoint = await register(client, partner, receiver.url, types=["webhook_endpoint.secret_rotated"])
    rotated = await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=partner)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    assert rotated.json()["previous_secret_valid_until"] is not None
    await deliver(db, clock, settings)
    [got] = receiver.requests
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verify(new_secret, got)["type"] == "webhook_endpoint.secret_rotated"
    assert verify(endpoint["secret"], got)["type"] == "webhook_endpoint.secret_rotated"


async def test_an_event_matching_no_type_filter_is_not_sent(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    endpoint = await register(client, partner, receiver.url, types=["webhook_endpoint.secret_rotated"])
    await deliver(db, clock, settings)
    assert receiver.requests == []  # its own webhook_endpoint.created does not match
    cursor = raw.execute("SELECT cursor FROM webhook_endpoints WHERE id = %s", (endpoint["id"],)).fetchone()
    head = raw.execute("SELECT max(position) FROM events").fetchone()
    assert cursor is not None
    assert head is not None
    assert cursor[0] == head[0]
    await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=partner)
    await deliver(db, clock, settings)
    assert [json.loads(r.body)["type"] for r in receiver.requests] == ["webhook_endpoint.secret_rotated"]


async def test_partner_endpoints_get_only_their_mvnos_events(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    partner: dict[str, str],
    mvno: dict[str, Any],
    other_mvno: dict[str, Any],
    receiver: Receiver,
    other_receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    other_partner = factories.bearer(await factories.create_key(db, role="partner", mvno_id=other_mvno["id"]))
    mine = await register(client, partner, receiver.url)
    theirs = await register(client, other_partner, other_receiver.url)
    # The operator registers one for the first MVNO only; a partner naming another MVNO gets 404.
    for_mine = await register(client, operator, receiver.url, mvno_id=mvno["id"])
    refused = await client.post(
        "/v1/webhook-endpoints", json={"url": receiver.url, "mvno_id": other_mvno["id"]}, headers=partner
    )
    factories.assert_problem(refused, 404, "not_found")
    assert (await client.get(f"/v1/webhook-endpoints/{theirs['id']}", headers=partner)).status_code == 404
    listed = (await client.get("/v1/webhook-endpoints", headers=partner)).json()["items"]
    assert {e["id"] for e in listed} == {mine["id"], for_mine["id"]}  # not theirs
    await client.post(f"/v1/webhook-endpoints/{theirs['id']}/rotate-secret", headers=other_partner)
    await client.patch(f"/v1/mvnos/{other_mvno['id']}", json={"name": "renamed"}, headers=operator)
    await deliver(db, clock, settings)
    await deliver(db, clock, settings)
    assert receiver.requests
    assert other_receiver.requests
    assert {json.loads(r.body)["data"]["mvno_id"] for r in receiver.requests} == {mvno["id"]}
    assert {json.loads(r.body)["data"]["mvno_id"] for r in other_receiver.requests} == {other_mvno["id"]}


async def test_delivery_is_retried_after_the_receiver_was_down(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    down = Receiver(free_port())  # nothing listens on its port yet
    endpoint = await register(client, partner, down.url)
    report = await deliver(db, clock, settings)
    assert report.failed == 1
    assert report.delivered == 0
    state = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=partner)).json()
    assert state["failing_since"] is not None
    assert state["next_attempt_at"] is not None
    await down.start()
    try:
        assert (await deliver(db, clock, settings)).delivered == 0  # the retry is not due yet
        clock.advance(seconds=settings.webhook_retry_first_seconds + 1)
        assert (await deliver(db, clock, settings)).delivered == 1
    finally:
        await down.stop()
    log = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=partner)).json()
    attempts = [(d["attempt"], d["succeeded"]) for d in reversed(log["items"])]
    assert attempts == [(1, False), (2, True)]
    assert len({d["event_id"] for d in log["items"]}) == 1
    assert down.ids() == [log["items"][0]["event_id"]]
    state = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=partner)).json()
    assert state["failing_since"] is None
    assert state["status"] == "enabled"


async def test_a_worker_killed_between_commit_and_send_delivers_again_with_the_same_id(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    await register(client, partner, receiver.url)
    gate = asyncio.Event()
    receiver.hold = gate  # the first request is received, never answered
    await position_pending(db, 100_000)
    task = asyncio.create_task(worker.deliver_once(db, clock, settings))
    await asyncio.wait_for(receiver.arrived.wait(), 10)
    task.cancel()  # the worker dies with the event sent but its answer not recorded
    with pytest.raises(asyncio.CancelledError):
        await task
    receiver.hold = None
    gate.set()  # (lets the receiver's stalled connection end; the worker that held it is gone)
    clock.advance(minutes=5)  # past any lease the dead worker left
    assert (await worker.deliver_once(db, clock, settings)).delivered == 1
    assert len(receiver.requests) == 2
    assert receiver.ids()[0] == receiver.ids()[1]  # the same webhook-id: the receiver can de-duplicate
    assert (await worker.deliver_once(db, clock, settings)).delivered == 0  # and only until acknowledged


async def test_an_endpoint_failing_for_a_day_is_disabled_with_its_reason(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    receiver.status = 500
    endpoint = await register(client, partner, receiver.url)
    assert (await deliver(db, clock, settings)).failed == 1
    clock.advance(hours=settings.webhook_disable_after_hours + 1)
    report = await deliver(db, clock, settings)
    assert report.failed == 1
    assert report.disabled == 1
    state = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=partner)).json()
    assert state["status"] == "disabled"
    assert "HTTP 500" in state["disabled_reason"]
    clock.advance(hours=2)
    assert (await deliver(db, clock, settings)).failed == 0  # a disabled endpoint is left alone
    event = raw.execute(
        "SELECT mvno_id FROM events WHERE type = 'webhook_endpoint.disabled' AND subject_id = %s",
        (endpoint["id"],),
    ).fetchone()
    assert event == (mvno["id"],)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://192.168.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "ftp://127.0.0.1/hook",
        "http://user:pw@127.0.0.1/hook",
        "http://no-such-host.invalid/hook",
        "https://[::1",  # urlsplit raises on an unclosed bracket; found by schemathesis as a 500
        "https://\U0002d67a\u00caD[\u00a4\u0096\u023e\u00bb",
        "https://exa\x00mple.com/",
    ],
)
async def test_private_link_local_and_non_http_urls_are_refused(
    client: httpx.AsyncClient, partner: dict[str, str], url: str
) -> None:
    response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=partner)
    factories.assert_problem(response, 422, "validation_error")


async def test_loopback_is_refused_unless_allowed(settings: Settings) -> None:
    from mvno_core.webhooks import urls

    strict = settings.model_copy(update={"webhook_allow_loopback_urls": False})
    with pytest.raises(urls.UrlRefused):
        await urls.check_url("http://127.0.0.1:9/hook", strict)
    await urls.check_url("http://127.0.0.1:9/hook", settings)


async def test_regulator_reads_but_cannot_register_and_delete_removes(
    client: httpx.AsyncClient,
    regulator: dict[str, str],
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
) -> None:
    refused = await client.post("/v1/webhook-endpoints", json={"url": receiver.url}, headers=regulator)
    factories.assert_problem(refused, 403, "forbidden")
    endpoint = await register(client, partner, receiver.url)
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=regulator)).status_code == 200
    assert (
        await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=partner)
    ).status_code == 204
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=partner)).status_code == 404


async def test_an_event_committed_late_is_not_skipped(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
    conninfo: str,
) -> None:
    """An event whose transaction began first but commits after a later one was delivered still goes
    out (the endpoint's cursor is a feed position, given in commit-visibility order)."""
    await register(client, partner, receiver.url, types=["mvno.updated"])
    insert = (
        "INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data) "
        "VALUES (%s, 'mvno.updated', now(), %s, 'mvno', %s, '{}')"
    )
    with psycopg.connect(conninfo) as slow, psycopg.connect(conninfo, autocommit=True) as fast:
        slow.execute(insert, ("evt_late_" + mvno["id"][-8:], mvno["id"], mvno["id"]))  # not committed yet
        fast.execute(insert, ("evt_early_" + mvno["id"][-8:], mvno["id"], mvno["id"]))
        await deliver(db, clock, settings)
        assert receiver.ids() == ["evt_early_" + mvno["id"][-8:]]
        slow.commit()
    await deliver(db, clock, settings)
    assert receiver.ids() == ["evt_early_" + mvno["id"][-8:], "evt_late_" + mvno["id"][-8:]]


async def test_the_sweeper_prunes_old_delivery_attempts(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    from mvno_core.ops.sweeper import sweep_once

    endpoint = await register(client, partner, receiver.url)
    await deliver(db, clock, settings)
    url = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    assert len((await client.get(url, headers=partner)).json()["items"]) == 1
    clock.advance(days=settings.webhook_delivery_log_days - 1)
    await sweep_once(db, clock, settings)
    assert len((await client.get(url, headers=partner)).json()["items"]) == 1
    clock.advance(days=2)
    report = await sweep_once(db, clock, settings)
    assert report.webhook_deliveries_pruned >= 1
    assert (await client.get(url, headers=partner)).json()["items"] == []
