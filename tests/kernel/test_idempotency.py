"""Idempotency-Key: replay, reuse, in-flight, concurrent duplicates, and errors never stored."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import psycopg

from mvno_core.kernel.idempotency import lock_scope
from tests import factories
from tests.factories import assert_problem, mvno_body


def _key() -> str:
    return f"idem-{uuid.uuid4()}"


def _count_mvnos(raw: psycopg.Connection, code: str) -> int:
    row = raw.execute("SELECT count(*) FROM mvnos WHERE code = %s", (code,)).fetchone()
    assert row is not None
    return int(row[0])


def _count_audit(raw: psycopg.Connection, subject_id: str) -> int:
    row = raw.execute("SELECT count(*) FROM audit_entries WHERE subject_id = %s", (subject_id,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_replay_returns_stored_response_without_second_effect(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    headers = {**operator, "Idempotency-Key": _key()}
    body = mvno_body()
    first = await client.post("/v1/mvnos", json=body, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    # Same body, keys in another order: still the same request.
    reordered = dict(reversed(list(body.items())))
    second = await client.post("/v1/mvnos", json=reordered, headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert second.json() == first.json()
    assert _count_mvnos(raw, body["code"]) == 1
    assert _count_audit(raw, first.json()["id"]) == 1


async def test_same_key_different_body_is_422(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    headers = {**operator, "Idempotency-Key": _key()}
    assert (await client.post("/v1/mvnos", json=mvno_body(), headers=headers)).status_code == 201
    reused = await client.post("/v1/mvnos", json=mvno_body(), headers=headers)
    assert_problem(reused, 422, "idempotency_key_reused")


async def test_same_key_other_path_is_422(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    mvno = await factories.create_mvno(client, operator)
    headers = {**operator, "Idempotency-Key": _key()}
    assert (
        await client.post(f"/v1/mvnos/{mvno['id']}/restrict", json={"reason": "r"}, headers=headers)
    ).status_code == 200
    other = await client.post(f"/v1/mvnos/{mvno['id']}/reinstate", json={"reason": "r"}, headers=headers)
    assert_problem(other, 422, "idempotency_key_reused")


async def test_keys_are_scoped_per_api_key(
    client: httpx.AsyncClient, operator: dict[str, str], db: object
) -> None:
    other_operator = factories.bearer(await factories.create_key(db, role="operator"))  # type: ignore[arg-type]
    key = _key()
    one = await client.post("/v1/mvnos", json=mvno_body(), headers={**operator, "Idempotency-Key": key})
    two = await client.post("/v1/mvnos", json=mvno_body(), headers={**other_operator, "Idempotency-Key": key})
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


async def test_errors_are_not_stored_so_a_fixed_retry_succeeds(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    headers = {**operator, "Idempotency-Key": _key()}
    mvno = await factories.create_mvno(client, operator)
    duplicate = await client.post("/v1/mvnos", json=mvno_body(code=mvno["code"]), headers=headers)
    assert_problem(duplicate, 409, "conflict")
    fixed = await client.post("/v1/mvnos", json=mvno_body(), headers=headers)
    assert fixed.status_code == 201


async def test_request_while_first_is_in_flight_is_409(
    client: httpx.AsyncClient, operator: dict[str, str], conninfo: str
) -> None:
    """Deterministic in-flight: another transaction holds the key's lock, as a running first request would."""
    key = _key()
    key_id = await _key_id_of(conninfo, operator)
    with psycopg.connect(conninfo) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock_scope(key_id, key),))
        response = await client.post(
            "/v1/mvnos", json=mvno_body(), headers={**operator, "Idempotency-Key": key}
        )
        assert_problem(response, 409, "idempotency_key_in_flight")
        holder.rollback()
    after = await client.post("/v1/mvnos", json=mvno_body(), headers={**operator, "Idempotency-Key": key})
    assert after.status_code == 201


async def _key_id_of(conninfo: str, headers: dict[str, str]) -> str:
    from mvno_core.auth.keys import hash_secret

    secret = headers["Authorization"].removeprefix("Bearer ")
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "SELECT id FROM api_keys WHERE secret_hash = %s", (hash_secret(secret),)
        ).fetchone()
    assert row is not None
    return str(row[0])


async def test_concurrent_duplicates_have_exactly_one_effect(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    headers = {**operator, "Idempotency-Key": _key()}
    body = mvno_body()
    responses = await asyncio.gather(
        *(client.post("/v1/mvnos", json=body, headers=headers) for _ in range(10))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    originals = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(originals) == 1
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "idempotency_key_in_flight")
        else:
            assert r.json()["id"] == originals[0].json()["id"]
    assert _count_mvnos(raw, body["code"]) == 1


async def test_api_key_secret_is_not_stored_for_replay(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    headers = {**operator, "Idempotency-Key": _key()}
    first = await client.post("/v1/api-keys", json={"role": "regulator", "name": "auditor"}, headers=headers)
    assert first.status_code == 201
    secret = first.json()["key"]
    assert secret.startswith("mvk_")
    replay = await client.post("/v1/api-keys", json={"role": "regulator", "name": "auditor"}, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["key"] != secret
    stored = raw.execute(
        "SELECT response_body FROM idempotency_keys WHERE convert_from(response_body, 'UTF8') LIKE %s",
        (f"%{secret[-12:]}%",),
    )
    assert stored.fetchone() is None
    # The key itself works and the secret is not stored anywhere in clear.
    assert (await client.get("/v1/segments", headers=factories.bearer(secret))).status_code == 200


async def test_stored_fingerprints_are_keyed_with_the_callers_secret(
    client: httpx.AsyncClient, partner: dict[str, str], raw: Any
) -> None:
    """Bodies carry names and ID numbers: a plain hash of one could be reversed by trying every ID. The
    stored fingerprint is an HMAC under the caller's API key secret, which the database does not hold."""
    body = factories.subscriber_body()
    response = await client.post(
        "/v1/subscribers", json=body, headers={**partner, "Idempotency-Key": "fp-keyed"}
    )
    assert response.status_code == 201, response.text
    stored = raw.execute("SELECT fingerprint FROM idempotency_keys WHERE key = 'fp-keyed'").fetchone()[0]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    parts = b"".join(part + b"\x00" for part in (b"POST", b"/v1/subscribers", canonical))
    secret = partner["Authorization"].removeprefix("Bearer ")
    assert stored == hmac.new(secret.encode(), parts, hashlib.sha256).hexdigest()
    assert stored != hashlib.sha256(parts).hexdigest()
