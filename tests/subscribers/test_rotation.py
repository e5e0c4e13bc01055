"""Key rotation: interrupted and resumed, every subscriber ends readable under the new key and none
under the old one; the service keeps writing meanwhile."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.principal import SYSTEM
from mvno_core.subscribers import pii, rotation
from tests import factories


def _with_new_active_key(ring: pii.KeyRing, key_id: str) -> pii.KeyRing:
    return pii.KeyRing(
        active_key_id=key_id,
        keys={**ring.keys, key_id: os.urandom(32)},
        blind_index_key=ring.blind_index_key,
    )


def _only(ring: pii.KeyRing, key_id: str) -> pii.KeyRing:
    return pii.KeyRing(
        active_key_id=key_id, keys={key_id: ring.keys[key_id]}, blind_index_key=ring.blind_index_key
    )


def _active(ring: pii.KeyRing, key_id: str) -> pii.KeyRing:
    return pii.KeyRing(active_key_id=key_id, keys=ring.keys, blind_index_key=ring.blind_index_key)


def _context(settings: Settings) -> Callable[[AsyncSession], RequestContext]:
    def context(session: AsyncSession) -> RequestContext:
        now = datetime.now(UTC)
        return RequestContext(session=session, principal=SYSTEM, request_id=None, now=now, settings=settings)

    return context


async def _batch(
    db: Database, settings: Settings, ring: pii.KeyRing, size: int, after_id: str | None = None
) -> rotation.RotationBatch:
    async with db.transaction() as session:
        return await rotation.rotate_batch(_context(settings)(session), ring, batch=size, after_id=after_id)


async def _remaining(db: Database, ring: pii.KeyRing) -> int:
    async with db.transaction() as session:
        return await rotation.remaining(session, ring)


async def test_rotation_interrupted_and_resumed_leaves_every_row_under_the_new_key(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    created = [await factories.create_subscriber(client, partner) for _ in range(5)]
    old = pii.keyring(settings)
    new = _with_new_active_key(old, "k_rotated")

    first = await _batch(db, settings, new, 2)  # then the process "dies"
    assert first.rekeyed == 2
    assert first.last_id is not None
    second = await _batch(db, settings, new, 2, after_id=first.last_id)  # the cursor moves on
    assert second.rekeyed == 2
    assert second.last_id is not None
    assert second.last_id > first.last_id
    assert await _remaining(db, new) > 0
    # The service goes on writing (with its own ring, still on the old key) while rotation is half done.
    created.append(await factories.create_subscriber(client, partner))
    # A fresh run starts over from the first id (the cursor is not kept) and finishes the job.
    assert await rotation.rotate_all(db, _context(settings), new, batch=3) == 0
    assert await _remaining(db, new) == 0

    only_new, only_old = _only(new, "k_rotated"), _only(new, old.active_key_id)
    ids = [s["id"] for s in created]
    rows = raw.execute(
        "SELECT id, name_ciphertext, id_number_ciphertext FROM subscribers WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    assert len(rows) == len(ids)
    for subscriber_id, name, number in rows:
        assert pii.key_id_of(bytes(name)) == pii.key_id_of(bytes(number)) == "k_rotated"
        assert only_new.decrypt(bytes(name), context=f"subscriber:{subscriber_id}:name")
        try:
            only_old.decrypt(bytes(name), context=f"subscriber:{subscriber_id}:name")
        except pii.PiiKeyError:
            pass
        else:
            raise AssertionError("a row is still readable under the old key")
    audit = raw.execute("SELECT count(*) FROM audit_entries WHERE action = 'pii.rekeyed'").fetchone()
    assert audit is not None
    assert audit[0] >= 2

    # Every row back under the key the app runs with (the same job, the other way round).
    assert await rotation.rotate_all(db, _context(settings), _active(new, old.active_key_id), batch=500) == 0


def test_key_ids_are_readable_without_keys() -> None:
    blob = bytes([1, 2]) + b"k9" + base64.b64decode("AAAAAAAAAAAAAAAA") + b"x"
    assert pii.key_id_of(blob) == "k9"


async def test_rotation_skips_a_row_held_by_running_work_and_reports_it_left(
    client: httpx.AsyncClient,
    partner: dict[str, str],
    db: Database,
    settings: Settings,
    conninfo: str,
) -> None:
    created = [await factories.create_subscriber(client, partner) for _ in range(4)]
    old = pii.keyring(settings)
    new = _with_new_active_key(old, "k_held")
    held = created[1]["id"]
    with psycopg.connect(conninfo) as other:
        other.execute("SELECT 1 FROM subscribers WHERE id = %s FOR UPDATE", (held,))
        # Every other row is re-sealed; the held one is skipped (not waited for) and reported left.
        assert await rotation.rotate_all(db, _context(settings), new, batch=2) == 1
        other.rollback()
    assert await _remaining(db, new) == 1
    assert await rotation.rotate_all(db, _context(settings), new, batch=2) == 0
    # Every row back under the key the app runs with.
    assert await rotation.rotate_all(db, _context(settings), _active(new, old.active_key_id), batch=500) == 0


async def test_rotation_reseals_the_signing_secrets_too_so_the_old_key_can_go(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    partner: dict[str, str],
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    endpoint = await client.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=partner
    )
    assert endpoint.status_code == 201, endpoint.text
    endpoint_id = endpoint.json()["id"]
    rotated = await client.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", headers=partner)
    assert rotated.status_code == 200, rotated.text  # the previous secret stays sealed beside the new one
    platform = await client.post(
        "/v1/recycling-platforms",
        json={"name": f"rot-{endpoint_id[-6:]}", "url": "http://127.0.0.1:9/reissue"},
        headers=operator,
    )
    assert platform.status_code == 201, platform.text
    platform_id = platform.json()["id"]
    old = pii.keyring(settings)
    new = _with_new_active_key(old, "k_rotated_secrets")

    assert await rotation.rotate_all(db, _context(settings), new, batch=50) == 0

    only_new, only_old = _only(new, "k_rotated_secrets"), _only(new, old.active_key_id)
    sealed = [
        (f"webhook_endpoint:{endpoint_id}:secret", value)
        for value in raw.execute(
            "SELECT secret_sealed, previous_secret_sealed FROM webhook_endpoints WHERE id = %s",
            (endpoint_id,),
        ).fetchone()
        or ()
    ] + [
        (f"recycling_platform:{platform_id}:secret", value)
        for value in raw.execute(
            "SELECT secret_sealed FROM recycling_platforms WHERE id = %s", (platform_id,)
        ).fetchone()
        or ()
    ]
    assert len(sealed) == 3
    for context, value in sealed:
        assert value is not None
        assert pii.key_id_of(bytes(value)) == "k_rotated_secrets"
        assert only_new.decrypt(bytes(value), context=context).startswith("whsec_")
        with pytest.raises(pii.PiiKeyError):
            only_old.decrypt(bytes(value), context=context)
    async with db.transaction() as session:
        assert set((await rotation.remaining_by_table(session, new)).values()) == {0}

    # Back under the key the app runs with, for the tests that follow.
    assert await rotation.rotate_all(db, _context(settings), _active(new, old.active_key_id), batch=500) == 0
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=partner)).status_code == 200
