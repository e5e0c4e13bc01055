"""MVNO exit takeover: everything moves (blocks by their rows, numbers untouched), a person at both
MVNOs merges, an interrupted takeover resumes and loses nothing, the receiver must hold every host and
province, scoping and the regulator's read-only role."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.ops import sweeper
from mvno_core.takeovers import repository as takeover_rows
from mvno_core.takeovers import service as takeover_service
from mvno_core.takeovers import worker
from tests import factories
from tests.cancellations.helpers import body, events, line
from tests.factories import assert_problem
from tests.lines.conftest import Scene, iccid, imsi

# Everything the takeover must carry over, counted over both MVNOs (nothing lost, nothing doubled), and
# a digest of the numbers rows of the exiting MVNO's block (numbers never change).
COUNTS = """
SELECT
  (SELECT count(*) FROM blocks WHERE mvno_id = ANY(%(m)s)),
  (SELECT count(*) FROM lines WHERE mvno_id = ANY(%(m)s)),
  (SELECT count(*) FROM line_holds h JOIN lines l ON l.id = h.line_id WHERE l.mvno_id = ANY(%(m)s)),
  (SELECT count(*) FROM subscriber_verifications WHERE mvno_id = ANY(%(m)s)),
  (SELECT count(*) FROM disputes WHERE mvno_id = ANY(%(m)s)),
  (SELECT count(*) FROM reservations WHERE mvno_id = ANY(%(m)s)),
  (SELECT coalesce(sum(live_lines), 0) FROM subscribers WHERE mvno_id = ANY(%(m)s)),
  (SELECT md5(string_agg(msisdn || status || coalesce(line_id, '') || coalesce(reservation_id, ''), ','
      ORDER BY msisdn)) FROM numbers WHERE block_prefix = %(prefix)s)
"""


async def _mvno_scene(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, **mvno: Any
) -> Scene:
    created = await factories.create_mvno(client, operator, **mvno)
    block = await factories.allocate(client, operator, created["id"], segment="165", province="11")
    partner = factories.bearer(await factories.create_key(db, role="partner", mvno_id=created["id"]))
    subscriber = await factories.create_subscriber(client, partner, verified=True)
    return Scene(created["id"], block["prefix"], partner, {}, subscriber["id"])


@pytest.fixture
def no_kick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests drive the worker by hand (to interrupt it); the request's own kick does nothing."""

    async def idle(*_: Any) -> None:
        return None

    monkeypatch.setattr(worker, "kick", idle)


async def _populate(
    client: httpx.AsyncClient, exiting: Scene, receiver: Scene, person_id: str
) -> dict[str, Any]:
    """At the exiting MVNO: the person (also at the receiver) with 3 lines, one held, one disputed,
    one cancelled (its number in quarantine); 6 more subscribers with a line each; a reservation."""
    facts: dict[str, Any] = {}
    person_a = await factories.create_subscriber(client, exiting.partner, verified=True, id_number=person_id)
    person_b = await factories.create_subscriber(client, receiver.partner, verified=True, id_number=person_id)
    facts["person_a"], facts["person_b"] = person_a["id"], person_b["id"]
    lines_a = [await line(client, exiting, n, subscriber_id=person_a["id"]) for n in range(4)]
    for n in range(3):
        await line(client, receiver, n, subscriber_id=person_b["id"])
    held = await client.post(
        f"/v1/lines/{lines_a[0]['id']}/holds", json={"reason": "user_request"}, headers=exiting.partner
    )
    assert held.status_code == 201
    disputed = await client.post(f"/v1/lines/{lines_a[1]['id']}/disputes", json={}, headers=exiting.partner)
    assert disputed.status_code == 201
    facts["dispute_id"] = disputed.json()["id"]
    cancelled = await client.post(
        f"/v1/lines/{lines_a[3]['id']}/cancellations", json=body(), headers=exiting.partner
    )
    assert cancelled.status_code == 201
    facts["quarantined_msisdn"] = lines_a[3]["msisdn"]
    facts["held_line"] = lines_a[0]["id"]
    for n in range(6):
        other = await factories.create_subscriber(client, exiting.partner, verified=True)
        await line(client, exiting, 10 + n, subscriber_id=other["id"])
    reserved = await client.post(
        "/v1/reservations", json={"msisdn": exiting.number(30)}, headers=exiting.partner
    )
    assert reserved.status_code == 201, reserved.text
    facts["reservation_id"] = reserved.json()["id"]
    return facts


def _counts(raw: psycopg.Connection, mvnos: list[str], prefix: str) -> tuple[Any, ...]:
    row = raw.execute(COUNTS, {"m": mvnos, "prefix": prefix}).fetchone()
    assert row is not None
    return tuple(row)


async def test_interrupted_takeover_resumes_and_everything_moves(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    db: Database,
    raw: psycopg.Connection,
    clock: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    no_kick: None,
) -> None:
    exiting = await _mvno_scene(client, operator, db)
    receiver = await _mvno_scene(client, operator, db)
    second_block = await factories.allocate(client, operator, exiting.mvno_id, segment="165", province="31")
    person = factories.resident_id()
    facts = await _populate(client, exiting, receiver, person)
    both = [exiting.mvno_id, receiver.mvno_id]
    before = _counts(raw, both, exiting.prefix)
    exiting_lines = raw.execute(
        "SELECT count(*) FROM lines WHERE mvno_id = %s", (exiting.mvno_id,)
    ).fetchone()

    # Small batches, so the takeover takes many; the second batch "crashes" after doing its work.
    monkeypatch.setattr(takeover_service, "BLOCK_BATCH", 1)
    monkeypatch.setattr(takeover_service, "SUBSCRIBER_BATCH", 2)
    started = await client.post(
        "/v1/takeovers",
        json={"from_mvno_id": exiting.mvno_id, "to_mvno_id": receiver.mvno_id, "reason": "licence revoked"},
        headers=operator,
    )
    assert started.status_code == 202, started.text
    takeover = started.json()
    assert (takeover["status"], takeover["phase"]) == ("running", "blocks")
    assert takeover["progress"]["blocks_total"] == 2
    assert (takeover["progress"]["subscribers_total"], takeover["progress"]["lines_total"]) == (
        8,
        exiting_lines[0],
    )
    assert (await client.get(f"/v1/mvnos/{exiting.mvno_id}", headers=operator)).json()["status"] == "exiting"
    # No new business at an exiting MVNO.
    refused = await scene_activate(client, exiting, 60)
    assert_problem(refused, 409, "mvno_not_active")

    assert await worker.run_pending(db, clock, settings, max_batches=1) == 1
    real_advance = takeover_rows.advance
    calls = {"n": 0}

    async def crash_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("worker killed mid-batch")
        await real_advance(*args, **kwargs)

    monkeypatch.setattr(takeover_rows, "advance", crash_once)
    with pytest.raises(RuntimeError):
        await worker.run_pending(db, clock, settings, max_batches=1)
    monkeypatch.setattr(takeover_rows, "advance", real_advance)
    midway = (await client.get(f"/v1/takeovers/{takeover['id']}", headers=operator)).json()
    assert midway["status"] == "running"
    assert midway["progress"]["blocks"] == 1  # the crashed batch left nothing behind
    assert 0 < midway["progress"]["done_ratio"] < 1
    # The rest of the service keeps serving meanwhile; a subscriber registered at the exiting MVNO now
    # moves too.
    late = await factories.create_subscriber(client, exiting.partner)
    assert (await client.get(f"/v1/lines/{facts['held_line']}", headers=operator)).status_code == 200
    assert await worker.run_pending(db, clock, settings, max_batches=3) == 3

    # The sweeper picks up the running takeover and finishes it.
    report = await sweeper.sweep_once(db, clock, settings)
    assert report.takeover_batches >= 3
    done = (await client.get(f"/v1/takeovers/{takeover['id']}", headers=operator)).json()
    assert (done["status"], done["phase"], done["progress"]["done_ratio"]) == ("completed", "done", 1.0)
    assert done["progress"]["blocks"] == 2
    # 8 at the start and the one registered meanwhile.
    assert (done["progress"]["subscribers"], done["progress"]["subscribers_merged"]) == (9, 1)
    assert done["progress"]["lines"] == exiting_lines[0]
    assert done["progress"]["reservations"] == 1

    assert _counts(raw, both, exiting.prefix) == before
    assert _counts(raw, [receiver.mvno_id], exiting.prefix)[:6] == before[:6]
    assert (await client.get(f"/v1/mvnos/{exiting.mvno_id}", headers=operator)).json()[
        "status"
    ] == "terminated"
    for block in (exiting.prefix, second_block["prefix"]):
        assert raw.execute("SELECT mvno_id FROM blocks WHERE prefix = %s", (block,)).fetchone() == (
            receiver.mvno_id,
        )
    # One audit entry per committed batch, and the completion event for the receiver.
    batches = raw.execute(
        "SELECT count(*) FROM audit_entries WHERE action = 'takeover.batch' AND subject_id = %s",
        (takeover["id"],),
    ).fetchone()
    assert batches == (done["batches"] - 1,)  # the finishing batch records takeover.completed instead
    completed = await events(client, db, receiver.partner, "takeover.completed")
    assert [event["subject"]["id"] for event in completed] == [takeover["id"]]

    # The receiver now serves the moved lines with their holds; the exiting MVNO's key sees nothing.
    held = (await client.get(f"/v1/lines/{facts['held_line']}", headers=receiver.partner)).json()
    assert (held["mvno_id"], held["status"], held["open_holds"]) == (
        receiver.mvno_id,
        "suspended",
        ["user_request"],
    )
    assert_problem(
        await client.get(f"/v1/lines/{facts['held_line']}", headers=exiting.partner), 404, "not_found"
    )
    resolved = await client.post(
        f"/v1/disputes/{facts['dispute_id']}/resolve", json={"outcome": "owner_confirmed"}, headers=operator
    )
    assert resolved.status_code == 200
    assert raw.execute(
        "SELECT mvno_id FROM reservations WHERE id = %s", (facts["reservation_id"],)
    ).fetchone() == (receiver.mvno_id,)

    # The person at both MVNOs is one subscriber at the receiver; the old id resolves to it.
    merged = (await client.get(f"/v1/subscribers/{facts['person_a']}", headers=receiver.partner)).json()
    assert merged["id"] == facts["person_b"]
    assert merged["live_lines"] == 6  # 3 + 3 live (one of the 4 was cancelled): over the cap, kept
    assert (await client.get(f"/v1/subscribers/{late['id']}", headers=receiver.partner)).status_code == 200
    found = await client.post(
        "/v1/subscribers/search", json={"id_type": "resident_id", "id_number": person}, headers=operator
    )
    assert [item["id"] for item in found.json()["items"]] == [facts["person_b"]]
    lookup = await client.post(
        "/v1/identity-lookups", json={"id_type": "resident_id", "id_number": person}, headers=operator
    )
    assert lookup.json()["total"] == 6
    assert [(m["mvno_id"], m["count"]) for m in lookup.json()["by_mvno"]] == [(receiver.mvno_id, 6)]
    history = (
        await client.get(f"/v1/subscribers/{facts['person_b']}/verifications", headers=receiver.partner)
    ).json()
    assert len(history["items"]) == 2
    over_cap = await scene_activate(client, receiver, 61, subscriber_id=facts["person_b"])
    assert assert_problem(over_cap, 409, "card_limit_reached")["current"] == 6

    # The previous holder reclaims the quarantined number at the receiver, which holds the block now.
    reclaimed = await client.post(
        f"/v1/numbers/{facts['quarantined_msisdn']}/reclaims",
        json={"subscriber_id": facts["person_b"], "iccid": iccid(), "imsi": imsi()},
        headers=receiver.partner,
    )
    # At the cap the reclaim is refused like any activation; one line ended, it goes through.
    assert_problem(reclaimed, 409, "card_limit_reached")
    for held_line in (
        await client.get(
            f"/v1/lines?subscriber_id={facts['person_b']}&status=active", headers=receiver.partner
        )
    ).json()["items"][:2]:
        ended = await client.post(
            f"/v1/lines/{held_line['id']}/cancellations", json=body(), headers=receiver.partner
        )
        assert ended.status_code == 201, ended.text
    reclaimed = await client.post(
        f"/v1/numbers/{facts['quarantined_msisdn']}/reclaims",
        json={"subscriber_id": facts["person_b"], "iccid": iccid(), "imsi": imsi()},
        headers=receiver.partner,
    )
    assert reclaimed.status_code == 201, reclaimed.text
    assert reclaimed.json()["mvno_id"] == receiver.mvno_id


async def scene_activate(client: httpx.AsyncClient, scene: Scene, n: int, **overrides: Any) -> httpx.Response:
    return await scene.activate(client, scene.number(n), **overrides)


async def test_receiver_must_hold_every_host_and_province(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, no_kick: None
) -> None:
    exiting = await _mvno_scene(client, operator, db)
    no_cmcc = await factories.create_mvno(client, operator, hosts=["CUCC", "CTCC"])
    no_beijing = await factories.create_mvno(client, operator, licensed_provinces=["31", "44"])
    for receiver, code in ((no_cmcc, "host_mismatch"), (no_beijing, "region_not_licensed")):
        refused = await client.post(
            "/v1/takeovers",
            json={"from_mvno_id": exiting.mvno_id, "to_mvno_id": receiver["id"], "reason": "exit"},
            headers=operator,
        )
        assert_problem(refused, 422, code)
    # Refused means nothing changed.
    assert (await client.get(f"/v1/mvnos/{exiting.mvno_id}", headers=operator)).json()["status"] == "active"


async def test_takeover_scoping_and_roles(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    regulator: dict[str, str],
    db: Database,
    clock: Any,
    settings: Settings,
    no_kick: None,
) -> None:
    exiting = await _mvno_scene(client, operator, db)
    receiver = await _mvno_scene(client, operator, db)
    bystander = await _mvno_scene(client, operator, db)
    data = {"from_mvno_id": exiting.mvno_id, "to_mvno_id": receiver.mvno_id, "reason": "exit"}
    assert_problem(await client.post("/v1/takeovers", json=data, headers=receiver.partner), 403, "forbidden")
    assert_problem(await client.post("/v1/takeovers", json=data, headers=regulator), 403, "forbidden")
    assert_problem(
        await client.post("/v1/takeovers", json={**data, "extra": 1}, headers=operator),
        422,
        "validation_error",
    )
    started = await client.post("/v1/takeovers", json=data, headers=operator)
    assert started.status_code == 202
    url = f"/v1/takeovers/{started.json()['id']}"
    assert (await client.get(url, headers=receiver.partner)).status_code == 200
    assert (await client.get(url, headers=regulator)).status_code == 200
    assert_problem(await client.get(url, headers=exiting.partner), 404, "not_found")
    assert_problem(await client.get(url, headers=bystander.partner), 404, "not_found")
    again = await client.post("/v1/takeovers", json=data, headers=operator)
    assert_problem(again, 409, "conflict")
    assert await worker.run_pending(db, clock, settings, takeover_id=started.json()["id"], max_batches=2) == 2
    assert (await client.get(url, headers=operator)).json()["phase"] == "reservations"
    # Registered after the subscribers phase: the finishing batch moves it as a straggler.
    straggler = await factories.create_subscriber(client, exiting.partner)
    assert await worker.run_pending(db, clock, settings, takeover_id=started.json()["id"]) == 2
    assert (await client.get(url, headers=receiver.partner)).json()["status"] == "completed"
    moved = await client.get(f"/v1/subscribers/{straggler['id']}", headers=receiver.partner)
    assert moved.json()["mvno_id"] == receiver.mvno_id


async def test_the_server_runs_a_started_takeover_at_once(
    client: httpx.AsyncClient, operator: dict[str, str], db: Database, raw: psycopg.Connection
) -> None:
    exiting = await _mvno_scene(client, operator, db)
    receiver = await _mvno_scene(client, operator, db)
    await line(client, exiting, 0)
    started = await client.post(
        "/v1/takeovers",
        json={"from_mvno_id": exiting.mvno_id, "to_mvno_id": receiver.mvno_id, "reason": "merger"},
        headers=operator,
    )
    assert started.status_code == 202
    assert started.headers["location"] == f"/v1/takeovers/{started.json()['id']}"
    # The batches run right after the 202 (a background task of the request), not at the next sweep.
    done = (await client.get(started.headers["location"], headers=operator)).json()
    assert (done["status"], done["progress"]["lines"], done["progress"]["subscribers"]) == ("completed", 1, 1)
    assert raw.execute("SELECT status FROM mvnos WHERE id = %s", (exiting.mvno_id,)).fetchone() == (
        "terminated",
    )
