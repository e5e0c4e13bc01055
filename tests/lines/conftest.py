"""A scene for line tests: an MVNO with a block on 165 (CMCC), its partner key and a verified subscriber."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from stdnum import luhn

from mvno_core.kernel.db import Database
from mvno_core.numbers.grading import Grade, grade_of
from tests import factories

_rng = random.Random()


def iccid() -> str:
    """A valid ICCID: 8986, 14 digits, Luhn check digit."""
    body = "8986" + "".join(_rng.choice("0123456789") for _ in range(14))
    return body + luhn.calc_check_digit(body)


def imsi(mnc: str = "00") -> str:
    return "460" + mnc + "".join(_rng.choice("0123456789") for _ in range(10))


@dataclass
class Scene:
    mvno_id: str
    prefix: str
    partner: dict[str, str]
    other_partner: dict[str, str]
    subscriber_id: str

    def number(self, n: int) -> str:
        """The ``n``-th standard-grade number of the block from suffix 2000 (premium ones need a
        contract and are tested on their own)."""
        standard = (f"{self.prefix}{suffix:04d}" for suffix in range(2000, 10_000))
        picks = (msisdn for msisdn in standard if grade_of(msisdn) is Grade.STANDARD)
        return next(msisdn for i, msisdn in enumerate(picks) if i == n)

    def line_body(self, msisdn: str, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subscriber_id": self.subscriber_id,
            "msisdn": msisdn,
            "iccid": iccid(),
            "imsi": imsi("00"),
        }
        body.update(overrides)
        return body

    async def line(self, client: httpx.AsyncClient, n: int) -> dict[str, Any]:
        """A new active line on ``number(n)`` for the scene's subscriber (asserted 201)."""
        response = await self.activate(client, self.number(n))
        assert response.status_code == 201, response.text
        line: dict[str, Any] = response.json()
        return line

    async def activate(
        self, client: httpx.AsyncClient, msisdn: str, headers: dict[str, str] | None = None, **overrides: Any
    ) -> httpx.Response:
        body = self.line_body(msisdn, **overrides)
        return await client.post("/v1/lines", json=body, headers=headers or self.partner)


async def _scene(client: httpx.AsyncClient, operator: dict[str, str], db: Database) -> Scene:
    mvno = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, mvno["id"], segment="165", province="11")
    partner = factories.bearer(await factories.create_key(db, role="partner", mvno_id=mvno["id"]))
    subscriber = await factories.create_subscriber(client, partner, verified=True)
    return Scene(
        mvno_id=mvno["id"],
        prefix=block["prefix"],
        partner=partner,
        other_partner={},
        subscriber_id=subscriber["id"],
    )


@pytest.fixture
async def scene(client: httpx.AsyncClient, operator: dict[str, str], db: Database) -> Scene:
    return await _scene(client, operator, db)


@pytest.fixture
async def other_scene(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, scene: Scene
) -> Scene:
    other = await _scene(client, operator, db)
    scene.other_partner = other.partner
    other.other_partner = scene.partner
    return other
