"""Real-name retention on the fake clock: identity erased two years after the service ended, never
while a line lives; history stays, masked; the audit chain still verifies."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from tests import factories
from tests.lines.conftest import Scene


async def _end_line(client: httpx.AsyncClient, operator: dict[str, str], line_id: str) -> None:
    dispute = (await client.post(f"/v1/lines/{line_id}/disputes", headers=operator)).json()
    resolved = await client.post(
        f"/v1/disputes/{dispute['id']}/resolve", json={"outcome": "fraudulent"}, headers=operator
    )
    assert resolved.status_code == 200, resolved.text


async def test_identity_is_purged_two_years_after_service_ends(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    scene: Scene,
    clock: Any,
    db: Database,
    settings: Settings,
    raw: psycopg.Connection,
) -> None:
    ended_id = factories.resident_id()
    ended = await factories.create_subscriber(client, scene.partner, verified=True, id_number=ended_id)
    living = await factories.create_subscriber(client, scene.partner, verified=True)
    idle = await factories.create_subscriber(client, scene.partner)  # never had a line
    ended_line = (await scene.activate(client, scene.number(600), subscriber_id=ended["id"])).json()
    await scene.activate(client, scene.number(601), subscriber_id=living["id"])
    await _end_line(client, operator, ended_line["id"])

    clock.advance(days=365)
    later = await factories.create_subscriber(client, scene.partner, verified=True)
    later_line = (await scene.activate(client, scene.number(602), subscriber_id=later["id"])).json()
    await _end_line(client, operator, later_line["id"])

    clock.advance(days=365 + 1)  # 731 days after the first ending, 366 after the second
    report = await sweeper.sweep_once(db, clock, settings)
    assert report.identities_purged >= 2

    def identity(subscriber_id: str) -> tuple[Any, ...]:
        row = raw.execute(
            "SELECT name_ciphertext IS NULL, id_number_ciphertext IS NULL, id_blind_index IS NULL, "
            "purged_at IS NOT NULL, name_masked FROM subscribers WHERE id = %s",
            (subscriber_id,),
        ).fetchone()
        assert row is not None
        return tuple(row)

    assert identity(ended["id"])[:4] == (True, True, True, True)
    assert identity(idle["id"])[:4] == (True, True, True, True)
    assert identity(living["id"])[:4] == (False, False, False, False)  # a live line: kept
    assert identity(later["id"])[:4] == (False, False, False, False)  # ended a year ago: kept
    assert identity(ended["id"])[4] == ended["name_masked"]  # the mask stays

    shown = (await client.get(f"/v1/subscribers/{ended['id']}", headers=scene.partner)).json()
    assert shown["purged_at"] is not None
    assert shown["real_name_status"] == "unverified"
    lookup = await client.post(
        "/v1/identity-lookups", json={"id_type": "resident_id", "id_number": ended_id}, headers=operator
    )
    assert lookup.json()["total"] == 0
    assert lookup.json()["by_mvno"] == []
    # The line and its history stay.
    assert (await client.get(f"/v1/lines/{ended_line['id']}", headers=operator)).json()[
        "status"
    ] == "cancelled"
    audit = raw.execute(
        "SELECT data FROM audit_entries WHERE action = 'subscriber.purged' AND subject_id = %s",
        (ended["id"],),
    ).fetchall()
    assert len(audit) == 1
    assert ended_id not in str(audit[0][0])
    # Purged once: a second sweep does nothing more for them.
    await sweeper.sweep_once(db, clock, settings)
    again = raw.execute(
        "SELECT count(*) FROM audit_entries WHERE action = 'subscriber.purged' AND subject_id = %s",
        (ended["id"],),
    ).fetchone()
    assert again == (1,)
    verified = (await client.get("/v1/audit/verify", headers=operator)).json()
    assert verified["ok"] is True
