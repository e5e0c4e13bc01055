"""Audit trail: written with each mutation, append-only, hash-chained by the sequencer, verifiable."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from mvno_core.audit import sequencer
from mvno_core.kernel.db import Database
from tests import factories
from tests.factories import assert_problem


async def _link_all(db: Database) -> None:
    while True:
        async with db.transaction() as session:
            if not await sequencer.link_batch(session, 1000):
                return


async def test_mutations_write_audit_entries_with_actor(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database
) -> None:
    mvno = await factories.create_mvno(client, operator)
    await client.post(f"/v1/mvnos/{mvno['id']}/restrict", json={"reason": "order 7"}, headers=operator)
    response = await client.get(
        "/v1/audit", params={"subject_kind": "mvno", "subject_id": mvno["id"]}, headers=operator
    )
    entries = response.json()["items"]
    assert [e["action"] for e in entries] == ["mvno.created", "mvno.restricted"]
    assert entries[0]["actor"]["role"] == "operator"
    assert entries[0]["actor"]["key_id"].startswith("key_")
    assert entries[0]["request_id"]
    assert entries[1]["data"] == {"from": "active", "to": "restricted", "reason": "order 7"}
    # Unchained until the sequencer runs; then every entry has a position and a hash.
    await _link_all(db)
    linked = (
        await client.get(
            "/v1/audit", params={"subject_kind": "mvno", "subject_id": mvno["id"]}, headers=operator
        )
    ).json()["items"]
    assert all(e["seq"] is not None and len(e["hash"]) == 64 for e in linked)
    assert linked[0]["seq"] < linked[1]["seq"]


async def test_failed_request_leaves_no_audit_entry(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    mvno = await factories.create_mvno(client, operator)
    refused = await client.post(f"/v1/mvnos/{mvno['id']}/reinstate", headers=operator)  # already active
    assert_problem(refused, 409, "illegal_transition")
    entries = raw.execute("SELECT action FROM audit_entries WHERE subject_id = %s", (mvno["id"],)).fetchall()
    events = raw.execute("SELECT type FROM events WHERE subject_id = %s", (mvno["id"],)).fetchall()
    assert entries == [("mvno.created",)]
    assert events == [("mvno.created",)]


async def test_verify_ok_then_detects_a_tampered_row(
    client: httpx.AsyncClient, operator: dict[str, str], regulator: dict[str, str], raw: psycopg.Connection
) -> None:
    mvno = await factories.create_mvno(client, operator)
    verified = (await client.get("/v1/audit/verify", headers=regulator)).json()
    assert verified["ok"] is True
    assert verified["first_broken_seq"] is None
    assert verified["checked"] >= 1
    assert verified["pending"] == 0

    seq_row = raw.execute(
        "SELECT chain_pos FROM audit_entries WHERE subject_id = %s AND action = 'mvno.created'", (mvno["id"],)
    ).fetchone()
    assert seq_row is not None
    # A DBA bypassing the append-only trigger rewrites history; the chain must notice.
    with raw.transaction():
        raw.execute("SET LOCAL session_replication_role = replica")
        raw.execute(
            'UPDATE audit_entries SET data = data || \'{"name": "forged"}\' WHERE chain_pos = %s',
            (seq_row[0],),
        )
    try:
        broken = (await client.get("/v1/audit/verify", headers=operator)).json()
        assert broken["ok"] is False
        assert broken["first_broken_seq"] == seq_row[0]
    finally:
        # Put the row back so later verifications in this run see an intact chain.
        with raw.transaction():
            raw.execute("SET LOCAL session_replication_role = replica")
            raw.execute("UPDATE audit_entries SET data = data - 'name' WHERE chain_pos = %s", (seq_row[0],))
            raw.execute(
                "UPDATE audit_entries SET data = data || jsonb_build_object('name', %s::text) "
                "WHERE chain_pos = %s",
                (mvno["name"], seq_row[0]),
            )
    assert (await client.get("/v1/audit/verify", headers=operator)).json()["ok"] is True


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET action = 'mvno.deleted' WHERE id = %s",
        "DELETE FROM audit_entries WHERE id = %s",
    ],
)
async def test_append_only_trigger_refuses_changes(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection, statement: str
) -> None:
    mvno = await factories.create_mvno(client, operator)
    row = raw.execute("SELECT id FROM audit_entries WHERE subject_id = %s", (mvno["id"],)).fetchone()
    assert row is not None
    with pytest.raises(psycopg.errors.RaiseException):
        raw.execute(statement, (row[0],))
    with pytest.raises(psycopg.errors.RaiseException):
        raw.execute("TRUNCATE audit_entries")


async def test_linked_rows_cannot_be_relinked(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection, db: Database
) -> None:
    mvno = await factories.create_mvno(client, operator)
    await _link_all(db)
    with pytest.raises(psycopg.errors.RaiseException):
        raw.execute(
            "UPDATE audit_entries SET chain_hash = repeat('0', 64) WHERE subject_id = %s", (mvno["id"],)
        )


async def test_concurrent_writers_lose_no_entry(
    client: httpx.AsyncClient, operator: dict[str, str], raw: psycopg.Connection
) -> None:
    created = await asyncio.gather(*(factories.create_mvno(client, operator) for _ in range(20)))
    verified = (await client.get("/v1/audit/verify", headers=operator)).json()
    assert verified["ok"] is True
    ids = [m["id"] for m in created]
    rows = raw.execute(
        "SELECT count(*), count(chain_pos), count(DISTINCT chain_pos) FROM audit_entries "
        "WHERE subject_id = ANY(%s) AND action = 'mvno.created'",
        (ids,),
    ).fetchone()
    assert rows == (20, 20, 20)


async def test_partner_sees_only_its_audit_and_cannot_verify(
    client: httpx.AsyncClient, operator: dict[str, str], partner: dict[str, str], mvno: dict[str, object]
) -> None:
    other = await factories.create_mvno(client, operator)
    mine = (await client.get("/v1/audit", params={"limit": 500}, headers=partner)).json()["items"]
    assert mine
    assert all(e["mvno_id"] == mvno["id"] for e in mine)
    theirs = await client.get("/v1/audit", params={"subject_id": other["id"]}, headers=partner)
    assert theirs.json()["items"] == []
    assert_problem(await client.get("/v1/audit/verify", headers=partner), 403, "forbidden")
