"""Key rotation: interrupted and resumed, every subscriber ends readable under the new key and none
under the old one; the service keeps writing meanwhile."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

import httpx
import psycopg

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


async def _batch(db: Database, settings: Settings, ring: pii.KeyRing, size: int) -> rotation.RotationBatch:
    async with db.transaction() as session:
        now = datetime.now(UTC)
        ctx = RequestContext(session=session, principal=SYSTEM, request_id=None, now=now, settings=settings)
        return await rotation.rotate_batch(ctx, ring, batch=size)


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
    assert first.remaining > 0
    # The service goes on writing (with its own ring, still on the old key) while rotation is half done.
    created.append(await factories.create_subscriber(client, partner))
    while (await _batch(db, settings, new, 500)).rekeyed:
        pass
    assert (await _batch(db, settings, new, 500)).remaining == 0

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
    while (await _batch(db, settings, _active(new, old.active_key_id), 500)).rekeyed:
        pass


def test_key_ids_are_readable_without_keys() -> None:
    blob = bytes([1, 2]) + b"k9" + base64.b64decode("AAAAAAAAAAAAAAAA") + b"x"
    assert pii.key_id_of(blob) == "k9"
