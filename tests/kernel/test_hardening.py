"""Inputs a hostile or sloppy client sends: no leaks about other MVNOs, no 5xx for bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request

from mvno_core.kernel import problems
from mvno_core.kernel.db import Database
from mvno_core.kernel.observability import JsonFormatter
from tests import factories
from tests.factories import assert_problem


def _without_ids(problem: dict[str, Any], ident: str) -> dict[str, Any]:
    return {
        key: (value.replace(ident, "<id>") if isinstance(value, str) else value)
        for key, value in problem.items()
        if key not in ("request_id", "instance")
    }


async def test_another_mvnos_objects_look_exactly_like_missing_ones(
    client: httpx.AsyncClient, operator: dict[str, str], partner: dict[str, str]
) -> None:
    other = await factories.create_mvno(client, operator)
    block = await factories.allocate(client, operator, other["id"], segment="165")
    theirs_reservation = (
        await client.post("/v1/reservations", json={"msisdn": block["prefix"] + "0001"}, headers=operator)
    ).json()
    pairs = [
        (f"/v1/mvnos/{other['id']}", other["id"], "mvno_01AAAAAAAAAAAAAAAAAAAAAAAA"),
        (f"/v1/blocks/{block['id']}", block["id"], "blk_01AAAAAAAAAAAAAAAAAAAAAAAA"),
        (f"/v1/numbers/{block['prefix']}0002", f"{block['prefix']}0002", "16299999999"),
        (
            f"/v1/numbers/{block['prefix']}0002/changes?since=2026-01-01",
            f"{block['prefix']}0002",
            "16299999999",
        ),
        (
            f"/v1/reservations/{theirs_reservation['id']}",
            theirs_reservation["id"],
            "rsv_01AAAAAAAAAAAAAAAAAAAAAA",
        ),
    ]
    for existing_path, existing_id, missing_id in pairs:
        existing = assert_problem(await client.get(existing_path, headers=partner), 404, "not_found")
        missing_path = existing_path.replace(existing_id, missing_id)
        missing = assert_problem(await client.get(missing_path, headers=partner), 404, "not_found")
        assert _without_ids(existing, existing_id) == _without_ids(missing, missing_id), existing_path


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/mvnos/mvno_%00x", None),
        ("GET", "/v1/blocks/blk%00", None),
        ("GET", "/v1/audit?subject_kind=a%00b", None),
        ("GET", "/v1/mvnos?cursor=WyJhXHUwMDAwYiJd", None),  # cursor ["a\u0000b"]
        ("POST", "/v1/mvnos", {"name": "bad\u0000name"}),
        ("POST", "/v1/reservations", {"mvno_id": "mvno_\u0000", "criteria": {}}),
    ],
)
async def test_nul_characters_are_422_not_5xx(
    client: httpx.AsyncClient, operator: dict[str, str], method: str, path: str, body: dict[str, Any] | None
) -> None:
    if body is not None and path == "/v1/mvnos":
        body = factories.mvno_body(**body)
    response = await client.request(method, path, json=body, headers=operator)
    assert response.status_code < 500, response.text
    assert_problem(response, response.status_code, response.json()["code"])
    assert response.status_code in (404, 422)


async def test_absurdly_nested_json_with_idempotency_key_is_422(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    body = b'{"a":' * 5000 + b"1" + b"}" * 5000
    response = await client.post(
        "/v1/mvnos",
        content=body,
        headers={**operator, "content-type": "application/json", "Idempotency-Key": "deep-1"},
    )
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/numbers?segment=999",
        "/v1/numbers?province=99",
        "/v1/blocks?segment=17",
        "/v1/blocks?province=x",
        "/v1/numbers?status=lost",
        "/v1/numbers?grade=gold",
    ],
)
async def test_list_filters_are_validated(
    client: httpx.AsyncClient, operator: dict[str, str], path: str
) -> None:
    assert_problem(await client.get(path, headers=operator), 422, "validation_error")


async def test_reinstate_rejects_unknown_fields(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator)
    await client.post(f"/v1/mvnos/{mvno['id']}/restrict", json={"reason": "r"}, headers=operator)
    assert_problem(
        await client.post(f"/v1/mvnos/{mvno['id']}/reinstate", json={"force": True}, headers=operator),
        422,
        "validation_error",
    )
    done = await client.post(
        f"/v1/mvnos/{mvno['id']}/reinstate", json={"note": "rectified"}, headers=operator
    )
    assert done.json()["status"] == "active"


async def test_api_key_location_resolves_and_hint_is_short(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    created = await client.post("/v1/api-keys", json={"role": "regulator", "name": "hint"}, headers=operator)
    assert created.status_code == 201
    fetched = await client.get(created.headers["location"], headers=operator)
    assert fetched.status_code == 200
    assert fetched.json()["id"] == created.json()["id"]
    assert "key" not in fetched.json()
    assert len(fetched.json()["hint"]) == len("mvk_") + 4
    assert created.json()["key"].startswith(fetched.json()["hint"])


async def test_database_error_logs_carry_no_values(
    db: Database, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL quotes offending values in its messages; none may reach a log line (later: ID numbers)."""
    secret = "110101199003074518"
    async with db.sessionmaker() as session:
        await session.execute(text("CREATE TEMP TABLE pii_probe (v text PRIMARY KEY)"))
        await session.execute(text("INSERT INTO pii_probe VALUES (:v)"), {"v": secret})
        with pytest.raises(IntegrityError) as caught:
            await session.execute(text("INSERT INTO pii_probe VALUES (:v)"), {"v": secret})
    assert secret in str(caught.value.orig)  # the server did quote it
    request = Request(
        {"type": "http", "method": "GET", "path": "/probe", "headers": [], "app": app, "query_string": b""}
    )
    caplog.set_level("INFO")
    response = await problems.render_unexpected(request, caught.value)
    assert response.status_code == 500
    assert caplog.records, "the failure was not logged"
    formatter = JsonFormatter()
    assert all(secret not in formatter.format(record) for record in caplog.records)


async def test_a_dropped_database_connection_is_a_retryable_503_then_recovers(
    client: httpx.AsyncClient, operator: dict[str, str], raw: Any, database_url: str
) -> None:
    """No ping per checkout: a connection the server dropped fails once, as 503 + Retry-After (never
    500), and the pool's stale connections are discarded so the retry succeeds."""
    assert (await client.get("/v1/segments", headers=operator)).status_code == 200
    database = database_url.rsplit("/", 1)[1].split("?")[0]
    raw.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        (database,),
    )
    first = await client.get("/v1/mvnos", headers=operator)
    assert_problem(first, 503, "service_unavailable")
    assert first.headers["retry-after"] == "1"
    retries = [(await client.get("/v1/mvnos", headers=operator)).status_code for _ in range(3)]
    assert retries == [200, 200, 200]
