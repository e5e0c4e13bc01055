"""The audit chain anchored outside the database, the service's restricted role, and a verify that
scales and never takes the service down with it."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from datetime import datetime

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text

from mvno_core.audit.checkpoints import checkpoint_message
from mvno_core.audit.hashing import chain_hash, content_hash
from mvno_core.kernel.config import Settings
from mvno_core.main import create_app
from tests import factories
from tests.conftest import APP_ROLE, KEY_DIR, Isolated
from tests.factories import assert_problem


async def _write_and_verify(box: Isolated, headers: dict[str, str], writes: int) -> dict[str, object]:
    for _ in range(writes):
        await factories.create_mvno(box.client, headers)
    verified = await box.client.get("/v1/audit/verify", headers=headers)
    assert verified.status_code == 200, verified.text
    body: dict[str, object] = verified.json()
    assert body["ok"] is True, body
    return body


async def test_deleted_tail_is_reported_missing(isolated: Isolated) -> None:
    operator = await isolated.operator()
    before = await _write_and_verify(isolated, operator, 6)
    length = int(str(before["length"]))
    # A superuser bypasses the append-only trigger and removes the last three rows.
    with psycopg.connect(isolated.owner_conninfo, autocommit=True) as dba, dba.transaction():
        dba.execute("SET LOCAL session_replication_role = replica")
        dba.execute("DELETE FROM audit_entries WHERE chain_pos > %s", (length - 3,))
    await factories.create_mvno(isolated.client, operator)  # a write after the deletion
    after = (await isolated.client.get("/v1/audit/verify", headers=operator)).json()
    assert after["ok"] is False
    assert after["first_missing_seq"] == length - 2
    # The new row is not linked over the gap (that would re-use the deleted positions): it waits.
    assert after["pending"] == 1
    assert after["length"] == length - 3


async def test_wiped_table_is_reported_missing_from_the_first_row(isolated: Isolated) -> None:
    operator = await isolated.operator()
    await _write_and_verify(isolated, operator, 3)
    with psycopg.connect(isolated.owner_conninfo, autocommit=True) as dba, dba.transaction():
        dba.execute("SET LOCAL session_replication_role = replica")
        dba.execute("DELETE FROM audit_entries")
    await factories.create_mvno(isolated.client, operator)
    after = (await isolated.client.get("/v1/audit/verify", headers=operator)).json()
    assert after["ok"] is False
    assert after["checked"] == 0
    assert after["first_missing_seq"] == 1


async def test_consistently_relinked_chain_is_reported_broken(isolated: Isolated) -> None:
    operator = await isolated.operator()
    before = await _write_and_verify(isolated, operator, 4)
    length = int(str(before["length"]))
    # Rewrite row 2 and re-link everything after it: the chain is consistent with itself again.
    with psycopg.connect(isolated.owner_conninfo, autocommit=True) as dba, dba.transaction():
        dba.execute("SET LOCAL session_replication_role = replica")
        rows = dba.execute(
            "SELECT id, recorded_at, actor_key_id, actor_role, actor_mvno_id, action, subject_kind, "
            "subject_id, mvno_id, request_id, data, chain_pos, prev_hash FROM audit_entries "
            "WHERE chain_pos >= 2 ORDER BY chain_pos"
        ).fetchall()
        previous = rows[0][12]
        for index, row in enumerate(rows):
            data = {**row[10], "forged": True} if index == 0 else row[10]
            new_content = content_hash(
                entry_id=row[0],
                recorded_at=row[1],
                actor_key_id=row[2],
                actor_role=row[3],
                actor_mvno_id=row[4],
                action=row[5],
                subject_kind=row[6],
                subject_id=row[7],
                mvno_id=row[8],
                request_id=row[9],
                data=data,
            )
            linked = chain_hash(previous, new_content)
            dba.execute(
                "UPDATE audit_entries SET data = %s, content_hash = %s, prev_hash = %s, chain_hash = %s "
                "WHERE id = %s",
                (json.dumps(data), new_content, previous, linked, row[0]),
            )
            previous = linked
    full = (await isolated.client.get("/v1/audit/verify", params={"full": "true"}, headers=operator)).json()
    assert full["ok"] is False
    assert full["first_broken_seq"] == length  # the signed checkpoint's head no longer matches
    assert full["first_missing_seq"] is None


async def test_signed_checkpoint_is_served_and_checks_a_callers_copy(isolated: Isolated) -> None:
    operator = await isolated.operator()
    await _write_and_verify(isolated, operator, 2)
    latest = (await isolated.client.get("/v1/audit/checkpoints/latest", headers=operator)).json()
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(latest["public_key"]))
    signed_at = datetime.fromisoformat(latest["signed_at"])
    public_key.verify(  # raises if the signature does not hold
        base64.b64decode(latest["signature"]),
        checkpoint_message(latest["length"], latest["head_hash"], signed_at),
    )
    key_file = isolated.key_dir / "audit-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    kept = {"length": str(latest["length"]), "head_hash": latest["head_hash"]}
    ok = (await isolated.client.get("/v1/audit/verify", params=kept, headers=operator)).json()
    assert ok["ok"] is True
    assert {"length": latest["length"], "head_hash": latest["head_hash"]} in ok["checked_against"]
    forged = {"length": str(latest["length"]), "head_hash": "ab" * 32}
    wrong = (await isolated.client.get("/v1/audit/verify", params=forged, headers=operator)).json()
    assert wrong["ok"] is False
    assert wrong["first_broken_seq"] == latest["length"]
    beyond = {"length": str(latest["length"] + 50), "head_hash": latest["head_hash"]}
    short = (await isolated.client.get("/v1/audit/verify", params=beyond, headers=operator)).json()
    assert short["first_missing_seq"] == latest["length"] + 1
    half = await isolated.client.get("/v1/audit/verify", params={"length": "3"}, headers=operator)
    assert_problem(half, 422, "validation_error")


async def test_checkpoints_are_not_for_partners(
    client: httpx.AsyncClient, partner: dict[str, str], regulator: dict[str, str]
) -> None:
    assert_problem(await client.get("/v1/audit/checkpoints/latest", headers=partner), 403, "forbidden")
    await client.get("/v1/audit/verify", headers=regulator)  # links and signs
    assert (await client.get("/v1/audit/checkpoints/latest", headers=regulator)).status_code == 200


async def test_verify_is_incremental_unless_full_is_asked(
    client: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    first = (await client.get("/v1/audit/verify", headers=operator)).json()
    assert first["ok"] is True
    for _ in range(3):
        await factories.create_mvno(client, operator)
    second = (await client.get("/v1/audit/verify", headers=operator)).json()
    assert second["ok"] is True
    assert second["full"] is False
    assert second["checked"] == second["length"] - first["length"] == 3
    full = (await client.get("/v1/audit/verify", params={"full": "true"}, headers=operator)).json()
    assert full["ok"] is True
    assert full["full"] is True
    assert full["checked"] == full["length"]


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
        "SET session_replication_role = replica",
        "DELETE FROM audit_entries",
        "TRUNCATE audit_entries",
        "UPDATE audit_entries SET data = '{}'",
        "DELETE FROM audit_checkpoints",
        "UPDATE events SET type = 'x'",
        "DROP TABLE audit_entries",
    ],
)
async def test_service_role_cannot_touch_the_ledger(
    client: httpx.AsyncClient, operator: dict[str, str], app_conninfo: str, statement: str
) -> None:
    await factories.create_mvno(client, operator)
    with psycopg.connect(app_conninfo, autocommit=True) as service:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            service.execute(statement)
        role = service.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        assert role.fetchone() == (APP_ROLE, False)


async def test_the_app_connects_as_the_restricted_role(app: object) -> None:
    async with app.state.db.transaction() as session:  # type: ignore[attr-defined]
        assert await session.scalar(text("SELECT current_user")) == APP_ROLE


async def test_concurrent_verifies_never_starve_other_requests(
    database_url: str, operator: dict[str, str], clock: object
) -> None:
    """50 verifications at once against a pool of 6: reads keep answering, nobody gets a 500."""
    settings = Settings(
        database_url=database_url,
        run_sweeper_in_server=False,
        db_pool_size=4,
        db_max_overflow=2,
        db_pool_timeout_seconds=3,
        audit_signing_key_file=KEY_DIR / "audit-signing.key",
    )
    small = create_app(settings, clock=clock, run_sweeper=False)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=small, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as c:
            verifies = [
                c.get("/v1/audit/verify", params={"full": "true"}, headers=operator) for _ in range(50)
            ]
            reads = [c.get("/v1/segments", headers=operator) for _ in range(10)]
            answers = await asyncio.gather(*verifies, *reads)
    finally:
        await small.state.db.dispose()
    statuses = [a.status_code for a in answers]
    assert 500 not in statuses
    assert all(s == 200 for s in statuses[50:]), statuses[50:]
    assert 200 in statuses[:50]
    for refused in (a for a in answers[:50] if a.status_code != 200):
        assert_problem(refused, 503, "service_unavailable")
        assert refused.headers["Retry-After"]


async def test_exhausted_pool_is_503_with_retry_after(database_url: str, operator: dict[str, str]) -> None:
    settings = Settings(
        database_url=database_url,
        run_sweeper_in_server=False,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=0.3,
        audit_signing_key_file=KEY_DIR / "audit-signing.key",
    )
    tiny = create_app(settings, run_sweeper=False)
    transport = httpx.ASGITransport(app=tiny, raise_app_exceptions=False)
    try:
        async with (
            tiny.state.db.engine.connect() as held,  # the only connection, held elsewhere
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as c,
        ):
            assert held is not None
            answer = await c.get("/v1/mvnos", headers=operator)  # reads the database
    finally:
        await tiny.state.db.dispose()
    assert_problem(answer, 503, "service_unavailable")
    assert answer.headers["Retry-After"] == "1"


async def test_forged_checkpoint_file_raises_the_alarm(isolated: Isolated) -> None:
    operator = await isolated.operator()
    await _write_and_verify(isolated, operator, 2)
    kept = isolated.key_dir / "audit-checkpoint.json"
    doc = json.loads(kept.read_text())
    kept.write_text(json.dumps({**doc, "length": doc["length"] - 1}))  # someone shortens the anchor
    verified = (await isolated.client.get("/v1/audit/verify", headers=operator)).json()
    assert verified["ok"] is False
    assert verified["alarms"]
    assert_problem(
        await isolated.client.get("/v1/audit/checkpoints/latest", headers=operator), 409, "conflict"
    )
