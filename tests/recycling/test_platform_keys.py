"""A recycling platform's API key: created by the operator for an active platform, it may call the
CAMARA number-recycling check for any number and nothing else (403 everywhere, refused by the console),
and the platform's deactivation revokes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from mvno_core.console.i18n import STRINGS
from tests.conftest import ShiftableClock
from tests.console.conftest import csrf_of
from tests.factories import assert_problem, bearer
from tests.lines.conftest import Scene
from tests.recycling.conftest import register
from tests.recycling.test_api import CHECK, china_day
from tests.webhooks.conftest import Receiver

KEYS = "/v1/api-keys"


@pytest.fixture
async def web(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as c:
        yield c


async def _platform_key(
    client: httpx.AsyncClient, operator: dict[str, str], platform_id: str
) -> dict[str, Any]:
    body = {"role": "recycling_platform", "recycling_platform_id": platform_id, "name": "wechat unbinding"}
    created = await client.post(KEYS, json=body, headers=operator)
    assert created.status_code == 201, created.text
    key: dict[str, Any] = created.json()
    return key


async def test_a_platform_key_calls_the_check_and_nothing_else(
    client: httpx.AsyncClient,
    web: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    other_scene: Scene,
    clock: ShiftableClock,
    receiver: Receiver,
    raw: psycopg.Connection,
) -> None:
    platform = await register(client, operator, receiver.url)
    key = await _platform_key(client, operator, platform["id"])
    assert (key["role"], key["recycling_platform_id"], key["mvno_id"]) == (
        "recycling_platform",
        platform["id"],
        None,
    )
    shown = (await client.get(f"{KEYS}/{key['id']}", headers=operator)).json()
    assert shown["recycling_platform_id"] == platform["id"]
    assert "key" not in shown
    headers = bearer(key["key"])

    # Any network's number: both MVNOs' lines.
    today = china_day(clock)
    for msisdn in ((await scene.line(client, 90))["msisdn"], (await other_scene.line(client, 91))["msisdn"]):
        answer = await client.post(
            CHECK, json={"phoneNumber": "+86" + msisdn, "specifiedDate": today}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"phoneNumChanged": False}

    # Every other route, read or write, is 403 (before the body is even looked at).
    line_body = scene.line_body(scene.number(92))
    for method, path, body in (
        ("GET", "/v1/numbers", None),
        ("GET", f"/v1/numbers/{scene.number(90)}", None),
        ("POST", "/v1/lines", line_body),
        ("GET", "/v1/lines", None),
        ("GET", "/v1/events", None),
        ("GET", "/v1/recycling-platforms", None),
        ("GET", "/v1/recycling-batches", None),
        ("POST", KEYS, {"role": "operator"}),
        ("GET", KEYS, None),
        ("POST", "/v1/identity-lookups", {"id_type": "resident_id", "id_number": "x"}),
        ("GET", "/v1/audit", None),
        ("GET", "/v1/mvnos", None),
    ):
        refused = await client.request(method, path, json=body, headers=headers)
        assert_problem(refused, 403, "forbidden")
    assert raw.execute("SELECT count(*) FROM lines WHERE msisdn = %s", (scene.number(92),)).fetchone() == (0,)

    # The console refuses the key.
    form = await web.get("/console/login")
    signed = await web.post("/console/login", data={"csrf": csrf_of(form.text), "api_key": key["key"]})
    assert signed.status_code == 403
    assert STRINGS["zh"]["platform_refused"] in signed.text
    assert "mvno_console" not in web.cookies

    created = raw.execute(
        "SELECT actor_role, data FROM audit_entries WHERE action = 'api_key.created' AND subject_id = %s",
        (key["id"],),
    ).fetchall()
    assert created == [
        (
            "operator",
            {
                "role": "recycling_platform",
                "name": "wechat unbinding",
                "recycling_platform_id": platform["id"],
            },
        )
    ]


async def test_deactivating_the_platform_revokes_its_keys(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    clock: ShiftableClock,
    receiver: Receiver,
    other_receiver: Receiver,
    raw: psycopg.Connection,
) -> None:
    platform = await register(client, operator, receiver.url)
    other = await register(client, operator, other_receiver.url)
    keys = [await _platform_key(client, operator, platform["id"]) for _ in range(2)]
    other_key = await _platform_key(client, operator, other["id"])
    msisdn = (await scene.line(client, 95))["msisdn"]
    body = {"phoneNumber": "+86" + msisdn, "specifiedDate": china_day(clock)}
    for key in (*keys, other_key):
        assert (await client.post(CHECK, json=body, headers=bearer(key["key"]))).status_code == 200

    gone = await client.delete(f"/v1/recycling-platforms/{platform['id']}", headers=operator)
    assert gone.status_code == 204
    for key in keys:
        assert_problem(await client.post(CHECK, json=body, headers=bearer(key["key"])), 401, "unauthorized")
        assert (await client.get(f"{KEYS}/{key['id']}", headers=operator)).json()["revoked_at"] is not None
    # Another platform's key is untouched.
    assert (await client.post(CHECK, json=body, headers=bearer(other_key["key"]))).status_code == 200

    revoked = raw.execute(
        "SELECT subject_id, data FROM audit_entries "
        "WHERE action = 'api_key.revoked' AND subject_id = ANY(%s)",
        ([k["id"] for k in keys],),
    ).fetchall()
    assert sorted(r[0] for r in revoked) == sorted(k["id"] for k in keys)
    assert all(r[1]["recycling_platform_id"] == platform["id"] for r in revoked)
    deactivated = raw.execute(
        "SELECT data FROM audit_entries WHERE action = 'recycling_platform.deactivated' AND subject_id = %s",
        (platform["id"],),
    ).fetchone()
    assert deactivated is not None
    assert deactivated[0]["keys_revoked"] == 2

    # No new key for an inactive platform.
    refused = await client.post(
        KEYS, json={"role": "recycling_platform", "recycling_platform_id": platform["id"]}, headers=operator
    )
    assert assert_problem(refused, 422, "validation_error")["errors"][0]["loc"] == [
        "body",
        "recycling_platform_id",
    ]


async def test_platform_key_bodies_are_checked(
    client: httpx.AsyncClient, operator: dict[str, str], scene: Scene, receiver: Receiver
) -> None:
    platform = await register(client, operator, receiver.url)
    for body in (
        {"role": "recycling_platform"},  # which platform?
        {"role": "recycling_platform", "recycling_platform_id": "rcp_missing"},
        {"role": "regulator", "recycling_platform_id": platform["id"]},  # only platform keys name one
        {"role": "partner", "mvno_id": scene.mvno_id, "recycling_platform_id": platform["id"]},
        {"role": "recycling_platform", "recycling_platform_id": "x" * 41},
    ):
        refused = await client.post(KEYS, json=body, headers=operator)
        assert_problem(refused, 422, "validation_error")
    # Only the operator creates keys.
    body = {"role": "recycling_platform", "recycling_platform_id": platform["id"]}
    denied = await client.post(KEYS, json=body, headers=scene.partner)
    assert_problem(denied, 403, "forbidden")
