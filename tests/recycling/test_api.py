"""Recycling platforms over HTTP (operator writes, regulator reads, partners refused) and the CAMARA
Number Recycling check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from tests import factories
from tests.cancellations.helpers import body as cancellation_body
from tests.cancellations.helpers import events
from tests.conftest import ShiftableClock
from tests.factories import assert_problem
from tests.lines.conftest import Scene
from tests.recycling.conftest import quarantined_number, register
from tests.webhooks.conftest import Receiver

CHECK = "/v1/number-recycling/check"
PLATFORMS = "/v1/recycling-platforms"


async def test_platform_lifecycle_and_roles(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    regulator: dict[str, str],
    partner: dict[str, str],
    receiver: Receiver,
    db: Database,
    raw: psycopg.Connection,
) -> None:
    body = {"name": "支付平台-test", "url": receiver.url}
    forbidden = (403, "forbidden")
    # Partners and the regulator may not register one.
    assert_problem(await client.post(PLATFORMS, json=body, headers=partner), *forbidden)
    assert_problem(await client.post(PLATFORMS, json=body, headers=regulator), 403, "forbidden")

    created = await client.post(PLATFORMS, json=body, headers={**operator, "Idempotency-Key": "rcp-create-1"})
    assert created.status_code == 201, created.text
    platform = created.json()
    assert platform["secret"].startswith("whsec_")
    assert platform["status"] == "active"
    assert created.headers["location"] == f"{PLATFORMS}/{platform['id']}"
    # A replay never shows the secret again.
    replay = await client.post(PLATFORMS, json=body, headers={**operator, "Idempotency-Key": "rcp-create-1"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["secret"] != platform["secret"]
    # The same name while active: conflict.
    assert_problem(await client.post(PLATFORMS, json=body, headers=operator), 409, "conflict")

    shown = await client.get(f"{PLATFORMS}/{platform['id']}", headers=regulator)
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    listed = (await client.get("/v1/recycling-platforms?status=active&limit=500", headers=regulator)).json()
    assert platform["id"] in [p["id"] for p in listed["items"]]
    assert_problem(await client.get(PLATFORMS, headers=partner), *forbidden)
    assert_problem(await client.get(f"{PLATFORMS}/{platform['id']}", headers=partner), 403, "forbidden")
    assert_problem(await client.get("/v1/recycling-batches", headers=partner), *forbidden)

    assert_problem(await client.delete(f"{PLATFORMS}/{platform['id']}", headers=partner), 403, "forbidden")
    assert_problem(await client.delete(f"{PLATFORMS}/{platform['id']}", headers=regulator), 403, "forbidden")
    assert (await client.delete(f"{PLATFORMS}/{platform['id']}", headers=operator)).status_code == 204
    assert (await client.delete(f"{PLATFORMS}/{platform['id']}", headers=operator)).status_code == 204
    gone = (await client.get(f"{PLATFORMS}/{platform['id']}", headers=operator)).json()
    assert gone["status"] == "inactive"
    assert gone["deactivated_at"] is not None
    assert_problem(
        await client.delete("/v1/recycling-platforms/rcp_nope", headers=operator), 404, "not_found"
    )
    assert_problem(await client.get("/v1/recycling-batches/rcb_nope", headers=operator), 404, "not_found")

    # Journal: one registration, one deactivation (the second DELETE changed nothing), each with its event.
    rows = raw.execute(
        "SELECT action FROM audit_entries WHERE subject_id = %s ORDER BY recorded_at", (platform["id"],)
    ).fetchall()
    assert [r[0] for r in rows] == ["recycling_platform.registered", "recycling_platform.deactivated"]
    feed = await events(client, db, operator, "recycling_platform.registered,recycling_platform.deactivated")
    assert [e["type"] for e in feed if e["subject"]["id"] == platform["id"]] == [
        "recycling_platform.registered",
        "recycling_platform.deactivated",
    ]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "p", "url": "http://10.0.0.1/hook"}, "url"),  # a private address (SSRF)
        ({"name": "p", "url": "ftp://example.com/"}, "url"),
        ({"name": "", "url": "https://example.com/"}, "name"),
        ({"name": "p", "url": "https://example.com/", "secret": "x"}, "secret"),
    ],
)
async def test_platform_bodies_are_checked(
    client: httpx.AsyncClient, operator: dict[str, str], body: dict[str, Any], loc: str
) -> None:
    problem = assert_problem(
        await client.post(PLATFORMS, json=body, headers=operator), 422, "validation_error"
    )
    assert loc in str(problem["errors"])


def china_day(clock: ShiftableClock, days: int = 0) -> str:
    return (clock.now().astimezone(CHINA_TIME) + timedelta(days=days)).date().isoformat()


async def changed(client: httpx.AsyncClient, headers: dict[str, str], phone: str, day: str) -> bool:
    response = await client.post(CHECK, json={"phoneNumber": phone, "specifiedDate": day}, headers=headers)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"phoneNumChanged"}
    result: bool = response.json()["phoneNumChanged"]
    return result


async def test_check_follows_the_holder(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    regulator: dict[str, str],
    scene: Scene,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    line = await scene.line(client, 40)
    msisdn = line["msisdn"]
    today = china_day(clock)
    # Held by the same line since today: unchanged, for the partner (its own number), the operator and
    # the regulator, in E.164 and in the bare national form.
    assert await changed(client, scene.partner, "+86" + msisdn, today) is False
    assert await changed(client, operator, msisdn, today) is False
    assert await changed(client, regulator, "+86" + msisdn, today) is False
    # Nobody held it the day before its activation (CAMARA: a day without a contract answers true).
    assert await changed(client, operator, msisdn, china_day(clock, -1)) is True

    cancelled = await client.post(
        f"/v1/lines/{line['id']}/cancellations", json=cancellation_body(), headers=scene.partner
    )
    assert cancelled.status_code == 201
    # Cancelled on/after the date: changed.
    assert await changed(client, scene.partner, "+86" + msisdn, today) is True

    clock.advance(days=91)
    await sweeper.sweep_once(db, clock, settings)
    newcomer = await factories.create_subscriber(client, scene.partner, verified=True)
    assert (await scene.activate(client, msisdn, subscriber_id=newcomer["id"])).status_code == 201
    after_reissue = china_day(clock)
    # Cancelled before the date and held by the new subscriber since: unchanged for the new holder's date.
    assert await changed(client, scene.partner, "+86" + msisdn, after_reissue) is False
    # Still changed for the old holder's date, and for a date inside the quarantine.
    assert await changed(client, scene.partner, "+86" + msisdn, today) is True
    assert await changed(client, scene.partner, "+86" + msisdn, china_day(clock, -30)) is True


async def test_check_refuses_bad_input_and_unknown_numbers(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    other_scene: Scene,
    clock: ShiftableClock,
) -> None:
    msisdn = scene.number(41)
    today = china_day(clock)
    bad_bodies: list[dict[str, Any]] = [
        {"phoneNumber": "+15551234567", "specifiedDate": today},  # not a Chinese mobile number
        {"phoneNumber": "8616500001234", "specifiedDate": today},  # E.164 needs the +
        {"phoneNumber": "165 0000 1234", "specifiedDate": today},
        {"phoneNumber": "+86" + msisdn, "specifiedDate": "2026-02-30"},
        {"phoneNumber": "+86" + msisdn, "specifiedDate": "2026/01/01"},
        {"phoneNumber": "+86" + msisdn, "specifiedDate": china_day(clock, 2)},  # the future
        {"specifiedDate": today},
        {"phoneNumber": "+86" + msisdn},
        {"phoneNumber": "+86" + msisdn, "specifiedDate": today, "extra": 1},
    ]
    for body in bad_bodies:
        assert_problem(await client.post(CHECK, json=body, headers=operator), 422, "validation_error")
    # Unknown to the service: 404, as CAMARA answers; another MVNO's number is unknown to a partner.
    unknown = {"phoneNumber": "+8619999999999", "specifiedDate": today}
    assert_problem(await client.post(CHECK, json=unknown, headers=operator), 404, "not_found")
    theirs = {"phoneNumber": "+86" + other_scene.number(1), "specifiedDate": today}
    assert_problem(await client.post(CHECK, json=theirs, headers=scene.partner), 404, "not_found")
    assert (await client.post(CHECK, json=theirs, headers=operator)).status_code == 200
    # A number never used: nobody holds it, so an app's binding cannot be its holder's.
    assert await changed(client, scene.partner, "+86" + msisdn, today) is True


async def test_recycled_batch_numbers_answer_changed_while_waiting(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    receiver: Receiver,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
) -> None:
    today = china_day(clock)
    msisdn = await quarantined_number(client, scene, 42)
    await register(client, operator, receiver.url)
    receiver.status = 500
    clock.advance(days=91)
    await sweeper.sweep_once(db, clock, settings)
    assert (await client.get(f"/v1/numbers/{msisdn}", headers=scene.partner)).json()[
        "status"
    ] == "quarantined"
    assert await changed(client, scene.partner, "+86" + msisdn, today) is True
