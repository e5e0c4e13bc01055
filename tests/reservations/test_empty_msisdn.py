"""Found by the conformance run: an empty ``msisdn`` was taken for "no msisdn" and ended in a 500."""

from __future__ import annotations

import httpx

from tests import factories


async def test_an_empty_msisdn_is_a_validation_error(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/reservations", json={"msisdn": "", "mvno_id": "", "ttl_seconds": 60}, headers=operator
    )
    factories.assert_problem(response, 422, "validation_error")
