"""A desk for console tests: an MVNO with a 165 block, a partner, a verified subscriber whose ID number
the test knows (for 一证通查), one active line, and operator / regulator / partner key secrets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from mvno_core.kernel.db import Database
from tests import factories
from tests.lines.conftest import Scene, _scene

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Desk:
    operator: str
    regulator: str
    partner: str
    mvno_id: str
    line_id: str
    msisdn: str
    id_number: str
    subscriber_id: str = ""
    # The MVNO's block, partner and a second verified subscriber, for more lines (HTTP tests only).
    scene: Scene | None = None

    @staticmethod
    def bearer(secret: str) -> dict[str, str]:
        return factories.bearer(secret)


def secret_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].partition(" ")[2]


@pytest.fixture
async def desk(
    client: httpx.AsyncClient, operator: dict[str, str], regulator: dict[str, str], db: Database
) -> Desk:
    scene = await _scene(client, operator, db)
    id_number = factories.resident_id()
    subscriber = await factories.create_subscriber(client, scene.partner, verified=True, id_number=id_number)
    msisdn = scene.number(0)
    activated = await scene.activate(client, msisdn, subscriber_id=subscriber["id"])
    assert activated.status_code == 201, activated.text
    return Desk(
        operator=secret_of(operator),
        regulator=secret_of(regulator),
        partner=secret_of(scene.partner),
        mvno_id=scene.mvno_id,
        line_id=activated.json()["id"],
        msisdn=msisdn,
        id_number=id_number,
        subscriber_id=subscriber["id"],
        scene=scene,
    )


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture
async def web(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a cookie jar of its own (the session-wide ``client`` is shared by every test)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as c:
        yield c


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    form = await client.get("/console/login")
    assert form.status_code == 200
    return await client.post("/console/login", data={"csrf": csrf_of(form.text), "api_key": secret})


async def page_token(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, str]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response, csrf_of(response.text)
