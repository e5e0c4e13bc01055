"""Reference data, health, metrics, the CLI, and migrations (up, down, up, no drift)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import httpx
import psycopg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from mvno_core.auth.keys import hash_secret
from mvno_core.kernel.db import Database
from mvno_core.kernel.embedded import ensure_database
from mvno_core.ops import migrate
from mvno_core.reference.data import PROVINCES
from tests import factories
from tests.factories import assert_problem


async def test_segments(client: httpx.AsyncClient, regulator: dict[str, str]) -> None:
    items = (await client.get("/v1/segments", headers=regulator)).json()["items"]
    hosts = {s["code"]: s["host"] for s in items}
    assert hosts == {
        "1700": "CTCC", "1701": "CTCC", "1702": "CTCC", "162": "CTCC",
        "1703": "CMCC", "1705": "CMCC", "1706": "CMCC", "165": "CMCC",
        "1704": "CUCC", "1707": "CUCC", "1708": "CUCC", "1709": "CUCC", "171": "CUCC", "167": "CUCC",
    }  # fmt: skip
    by_code = {s["code"]: s for s in items}
    assert by_code["1700"]["block_count"] == 1000
    assert by_code["171"]["block_count"] == 10000
    assert (by_code["171"]["first_prefix"], by_code["171"]["last_prefix"]) == ("1710000", "1719999")


async def test_provinces(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    items = (await client.get("/v1/provinces", headers=operator)).json()["items"]
    assert len(items) == 31
    assert {"code": "11", "name": "北京市", "name_en": "Beijing"} in items
    assert {p["code"] for p in items} == set(PROVINCES)


async def test_reference_needs_a_key(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/segments"), 401, "unauthorized")


async def test_health_readiness_and_metrics(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ok"
    assert ready["migration"] == ready["expected_migration"] is not None
    await client.get("/v1/mvnos", headers=operator)
    metrics = (await client.get("/metrics")).text
    assert 'mvno_http_requests_total{method="GET",route="/v1/mvnos",status="200"}' in metrics
    assert "mvno_http_request_duration_seconds_bucket" in metrics
    assert "\nmvno_database_up 1.0" in metrics
    for gauge in (
        "mvno_audit_pending_entries",
        "mvno_event_feed_held_back",
        "mvno_db_pool_connections_in_use",
    ):
        assert f"\n{gauge} " in metrics, gauge


async def test_logs_carry_request_id_and_never_the_key(
    client: httpx.AsyncClient, operator: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="mvno_core.access")
    await client.get("/v1/mvnos", headers={**operator, "X-Request-ID": "log-check-1"})
    records = [r for r in caplog.records if getattr(r, "request_id", None) == "log-check-1"]
    assert records, "no access log line for the request"
    assert records[0].route == "/v1/mvnos"  # type: ignore[attr-defined]
    assert records[0].key_id.startswith("key_")  # type: ignore[attr-defined]
    secret = operator["Authorization"].removeprefix("Bearer ")
    assert all(secret not in str(r.__dict__) for r in caplog.records)


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MVNO_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "mvno_core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_keys_create_list_revoke(client: httpx.AsyncClient, database_url: str) -> None:
    created = _cli(database_url, "keys", "create", "--role", "regulator", "--name", "cli-test")
    assert created.returncode == 0, created.stderr
    key_id, role, secret = created.stdout.split()[:3]
    assert role == "regulator"
    assert secret.startswith("mvk_")
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/segments", headers=headers)).status_code == 200
    listed = _cli(database_url, "keys", "list")
    assert key_id in listed.stdout
    assert secret not in listed.stdout
    assert _cli(database_url, "keys", "revoke", key_id).returncode == 0
    await asyncio.sleep(1.05)  # another process revoked it: seen within the auth cache window (1 s)
    assert_problem(await client.get("/v1/segments", headers=headers), 401, "unauthorized")
    partner_without_mvno = _cli(database_url, "keys", "create", "--role", "partner")
    assert partner_without_mvno.returncode == 1
    assert partner_without_mvno.stderr.strip() == "error: A partner key needs mvno_id."  # no traceback
    unknown = _cli(database_url, "keys", "revoke", "key_nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: API key key_nope not found."


async def test_cli_partner_key_by_mvno_code(
    client: httpx.AsyncClient, operator: dict[str, str], database_url: str
) -> None:
    mvno = await factories.create_mvno(client, operator)
    created = _cli(database_url, "keys", "create", "--role", "partner", "--mvno", mvno["code"])
    assert created.returncode == 0, created.stderr
    secret = created.stdout.split()[2]
    listed = await client.get("/v1/mvnos", headers={"Authorization": f"Bearer {secret}"})
    assert [m["id"] for m in listed.json()["items"]] == [mvno["id"]]


def test_cli_sweep(database_url: str) -> None:
    swept = _cli(database_url, "sweep")
    assert swept.returncode == 0, swept.stderr
    assert "audit entries linked" in swept.stdout
    # The reissue figures (recycled numbers waiting for the platforms' unbinding) are printed too.
    assert "reissue batches formed: " in swept.stdout
    assert "batches released: " in swept.stdout


def test_migrations_down_and_up_without_drift(conninfo: str) -> None:
    admin = make_url(conninfo).set(database="postgres").render_as_string(hide_password=False)
    url = ensure_database(admin, f"mvno_migr_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    command.check(migrate.alembic_config(url))  # raises if models and migrations differ
    migrate.downgrade(url, "base")
    with psycopg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_name <> 'alembic_version'"
        ).fetchone()
    assert tables == (0,)
    migrate.upgrade(url)
    command.check(migrate.alembic_config(url))


async def test_openapi_documents_routes_auth_and_problems(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/v1/mvnos", "/v1/mvnos/{mvno_id}/blocks", "/v1/numbers", "/v1/reservations", "/v1/events"):
        assert path in spec["paths"], path
    create = spec["paths"]["/v1/mvnos"]["post"]
    conflict = create["responses"]["409"]["content"]
    assert conflict["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert "application/json" not in conflict
    assert "Idempotency-Key" in [p["name"] for p in create.get("parameters", []) if p["in"] == "header"]
    assert "Idempotency-Key" not in [
        p["name"] for p in spec["paths"]["/v1/mvnos"]["get"].get("parameters", [])
    ]
    assert any("HTTPBearer" in requirement for requirement in create.get("security", []))
    assert "Problem" in spec["components"]["schemas"]


async def test_revocation_is_seen_within_the_auth_cache_window(
    client: httpx.AsyncClient, db: Database, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    """Keys are trusted from memory for ``auth_cache_seconds`` (1 s), so a hot request spends no round trip
    on authentication: a key revoked by another process stops working within that window; one revoked
    through this process stops at once."""
    elsewhere = factories.bearer(await factories.create_key(db, role="regulator"))
    assert (await client.get("/v1/mvnos", headers=elsewhere)).status_code == 200  # now cached
    secret_hash = hash_secret(elsewhere["Authorization"].removeprefix("Bearer "))
    raw.execute("UPDATE api_keys SET revoked_at = now() WHERE secret_hash = %s", (secret_hash,))
    await asyncio.sleep(1.05)
    assert_problem(await client.get("/v1/mvnos", headers=elsewhere), 401, "unauthorized")

    here = await client.post("/v1/api-keys", json={"role": "regulator"}, headers=operator)
    key = {"Authorization": f"Bearer {here.json()['key']}"}
    assert (await client.get("/v1/mvnos", headers=key)).status_code == 200  # cached
    revoked = await client.post(f"/v1/api-keys/{here.json()['id']}/revoke", headers=operator)
    assert revoked.status_code == 200
    assert_problem(await client.get("/v1/mvnos", headers=key), 401, "unauthorized")  # no wait
