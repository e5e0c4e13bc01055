"""Found by schemathesis: JSON's 60.0 is the integer 60 (accepted), "" is a given msisdn (a 422, not a
request for any number), and strings or booleans are never coerced to numbers."""

from __future__ import annotations

import httpx

from tests import factories
from tests.factories import assert_problem


async def test_integral_floats_are_integers_and_empty_msisdn_is_invalid(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    mvno = await factories.create_mvno(client, operator)
    await factories.allocate(client, operator, mvno["id"])
    body = {"mvno_id": mvno["id"], "criteria": {}}
    taken = await client.post("/v1/reservations", json={**body, "ttl_seconds": 600.0}, headers=operator)
    assert taken.status_code == 201, taken.text
    for ttl in (600.5, "600", True):
        refused = await client.post("/v1/reservations", json={**body, "ttl_seconds": ttl}, headers=operator)
        assert_problem(refused, 422, "validation_error")
    empty = await client.post(
        "/v1/reservations", json={"mvno_id": mvno["id"], "msisdn": "", "criteria": None}, headers=operator
    )
    assert_problem(empty, 422, "validation_error")
