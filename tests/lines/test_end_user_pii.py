"""Enterprise end users' PII follows the subscribers' rules: key rotation re-seals them (interrupted and
resumed, every row ends under the new key and none under the old), and the retention purge erases them
with their subscriber's identity (masks kept, the audit entry says how many)."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from mvno_core.subscribers import pii, rotation
from tests import factories
from tests.lines.conftest import Scene
from tests.lines.test_profiles import _enterprise, iot
from tests.lines.test_retention import _end_line
from tests.subscribers.test_rotation import _active, _batch, _context, _only, _with_new_active_key


def _person() -> dict[str, str]:
    return {"name": "赵六", "id_type": "resident_id", "id_number": factories.resident_id()}


async def _enterprise_line(client: httpx.AsyncClient, scene: Scene, enterprise_id: str, n: int) -> str:
    created = await scene.activate(
        client, scene.number(n), subscriber_id=enterprise_id, end_user=_person(), **iot()
    )
    assert created.status_code == 201, created.text
    line_id: str = created.json()["id"]
    return line_id


async def _register(client: httpx.AsyncClient, scene: Scene, line_id: str) -> None:
    again = await client.post(f"/v1/lines/{line_id}/end-users", json=_person(), headers=scene.partner)
    assert again.status_code == 201, again.text


def _readable(ring: pii.KeyRing, prefix: str, row_id: str, name: bytes, number: bytes) -> bool:
    try:
        ring.decrypt(name, context=f"{prefix}:{row_id}:name")
        ring.decrypt(number, context=f"{prefix}:{row_id}:id_number")
    except pii.PiiKeyError:
        return False
    return True


async def test_rotation_interrupted_and_resumed_reseals_subscribers_and_end_users(
    client: httpx.AsyncClient, scene: Scene, db: Database, settings: Settings, raw: psycopg.Connection
) -> None:
    enterprises = [await _enterprise(client, scene) for _ in range(2)]
    line_ids = [
        await _enterprise_line(client, scene, enterprise["id"], 200 + i)
        for i, enterprise in enumerate(enterprises)
    ]
    await _register(client, scene, line_ids[0])  # a replaced registration is rotated too
    old = pii.keyring(settings)
    new = _with_new_active_key(old, "k_rotated_eu")

    first = await _batch(db, settings, new, 2)  # then the process "dies"
    assert first.rekeyed == 2
    async with db.transaction() as session:
        assert (await rotation.remaining_by_table(session, new))["line_end_users"] > 0
    # The service goes on registering (with its own ring, on the old key) while rotation is half done.
    line_ids.append(await _enterprise_line(client, scene, enterprises[1]["id"], 210))
    await _register(client, scene, line_ids[1])
    assert await rotation.rotate_all(db, _context(settings), new, batch=3) == 0
    async with db.transaction() as session:
        assert set((await rotation.remaining_by_table(session, new)).values()) == {0}

    only_new, only_old = _only(new, "k_rotated_eu"), _only(new, old.active_key_id)
    end_users = raw.execute(
        "SELECT id, name_ciphertext, id_number_ciphertext FROM line_end_users WHERE line_id = ANY(%s)",
        (line_ids,),
    ).fetchall()
    assert len(end_users) == 5
    subscriber_ids = [e["id"] for e in enterprises] + [scene.subscriber_id]
    subscribers = raw.execute(
        "SELECT id, name_ciphertext, id_number_ciphertext FROM subscribers WHERE id = ANY(%s)",
        (subscriber_ids,),
    ).fetchall()
    assert len(subscribers) == 3
    for prefix, rows in (("end_user", end_users), ("subscriber", subscribers)):
        for row_id, name, number in rows:
            assert pii.key_id_of(bytes(name)) == pii.key_id_of(bytes(number)) == "k_rotated_eu"
            assert _readable(only_new, prefix, row_id, bytes(name), bytes(number)), row_id
            assert not _readable(only_old, prefix, row_id, bytes(name), bytes(number)), row_id
    # No row of either table still needs the old key: it may be retired.
    for table in ("subscribers", "line_end_users"):
        left = raw.execute(
            f"SELECT count(*) FROM {table} WHERE name_ciphertext IS NOT NULL "
            "AND convert_from(substring(name_ciphertext from 3 for get_byte(name_ciphertext, 1)), 'UTF8') "
            "<> 'k_rotated_eu'"
        ).fetchone()
        assert left == (0,), table
    audit = raw.execute(
        "SELECT data FROM audit_entries WHERE action = 'pii.rekeyed' AND subject_id = 'k_rotated_eu'"
    ).fetchall()
    assert sum(int(row[0]["end_users"]) for row in audit) >= len(end_users)
    assert "赵六" not in str([row[0] for row in audit])

    # Every row back under the key the app runs with (the same job, the other way round).
    assert await rotation.rotate_all(db, _context(settings), _active(new, old.active_key_id), batch=500) == 0


async def test_retention_purge_erases_the_end_users_of_the_subscribers_lines(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    clock: Any,
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    ended, living = await _enterprise(client, scene), await _enterprise(client, scene)
    ended_line = await _enterprise_line(client, scene, ended["id"], 300)
    await _register(client, scene, ended_line)  # two registrations on the ended line
    living_line = await _enterprise_line(client, scene, living["id"], 301)
    await _end_line(client, operator, ended_line)

    clock.advance(days=731)
    await sweeper.sweep_once(db, clock, settings)

    def end_users(line_id: str) -> list[tuple[Any, ...]]:
        rows = raw.execute(
            "SELECT name_ciphertext IS NULL, id_number_ciphertext IS NULL, name_masked, id_number_masked "
            "FROM line_end_users WHERE line_id = %s ORDER BY registered_at",
            (line_id,),
        ).fetchall()
        return [tuple(row) for row in rows]

    erased = end_users(ended_line)
    assert len(erased) == 2
    for name_gone, number_gone, name_masked, number_masked in erased:
        assert (name_gone, number_gone) == (True, True)
        assert name_masked == "赵*"
        assert "*" in number_masked
    assert [row[:2] for row in end_users(living_line)] == [(False, False)]  # a live line: kept
    # The masks still show through the API.
    shown = (await client.get(f"/v1/lines/{ended_line}/end-users", headers=operator)).json()["items"]
    assert [item["name_masked"] for item in shown] == ["赵*", "赵*"]

    audit = raw.execute(
        "SELECT data FROM audit_entries WHERE action = 'subscriber.purged' AND subject_id = %s",
        (ended["id"],),
    ).fetchall()
    assert len(audit) == 1
    assert audit[0][0]["end_users_purged"] == 2
    event = raw.execute(
        "SELECT data FROM events WHERE type = 'subscriber.purged' AND subject_id = %s", (ended["id"],)
    ).fetchone()
    assert event is not None
    assert event[0]["end_users_purged"] == 2
    verified = (await client.get("/v1/audit/verify", headers=operator)).json()
    assert verified["ok"] is True
