"""Every error path answers RFC 9457 problem+json with a stable code; never a stack trace."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import assert_problem


async def test_missing_invalid_and_malformed_keys_are_401(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/mvnos"), 401, "unauthorized")
    assert_problem(
        await client.get("/v1/mvnos", headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
    )
    assert_problem(await client.get("/v1/mvnos", headers={"Authorization": "Basic abc"}), 401, "unauthorized")


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    assert_problem(await client.get("/v1/nothing-here", headers=operator), 404, "not_found")
    assert_problem(await client.put("/v1/mvnos", headers=operator), 405, "method_not_allowed")


async def test_unknown_field_is_422_with_errors(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    body = assert_problem(
        await client.post("/v1/mvnos", json={"code": "ab", "is_admin": True}, headers=operator),
        422,
        "validation_error",
    )
    locations = [tuple(e["loc"]) for e in body["errors"]]
    assert ("body", "is_admin") in locations


async def test_malformed_json_is_422(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    response = await client.post(
        "/v1/mvnos", content=b"{not json", headers={**operator, "content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    response = await client.post("/v1/mvnos", json={"name": "x" * 70_000}, headers=operator)
    assert_problem(response, 413, "payload_too_large")


async def test_bad_query_values_are_422(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    assert_problem(await client.get("/v1/mvnos?limit=0", headers=operator), 422, "validation_error")
    assert_problem(await client.get("/v1/mvnos?limit=501", headers=operator), 422, "validation_error")
    assert_problem(await client.get("/v1/mvnos?cursor=%%%", headers=operator), 422, "validation_error")
    assert_problem(await client.get("/v1/numbers?pattern=abc", headers=operator), 422, "validation_error")
    assert_problem(await client.get("/v1/numbers/123", headers=operator), 422, "validation_error")


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\x01key"])
async def test_invalid_idempotency_key_is_400(
    client: httpx.AsyncClient, operator: dict[str, str], key: str
) -> None:
    response = await client.post(
        "/v1/mvnos",
        json={},
        headers={**operator, "Idempotency-Key": key} if key else {**operator, "Idempotency-Key": ""},
    )
    assert_problem(response, 400, "idempotency_key_invalid")


async def test_unexpected_exception_is_generic_500(app: FastAPI, client: httpx.AsyncClient) -> None:
    async def explode() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_api_route("/_test/explode", explode)
    try:
        response = await client.get("/_test/explode")
    finally:
        app.router.routes.pop()
    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


async def test_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
