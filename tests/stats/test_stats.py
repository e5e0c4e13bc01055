"""``GET /v1/stats`` against counts made here, independently, with SQL and Python date arithmetic."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

from tests import factories
from tests.conftest import ShiftableClock
from tests.lines.conftest import Scene

CHINA = ZoneInfo("Asia/Shanghai")


def expected(raw: psycopg.Connection, mvno_id: str | None, now: datetime) -> dict[str, Any]:
    where = "WHERE mvno_id = %(m)s" if mvno_id else ""
    args = {"m": mvno_id}
    numbers = dict(
        raw.execute(
            "SELECT n.status, count(*) FROM numbers n JOIN blocks b ON b.prefix = substr(n.msisdn, 1, 7) "
            + ("WHERE b.mvno_id = %(m)s " if mvno_id else "")
            + "GROUP BY 1",
            args,
        ).fetchall()
    )
    lines = dict(raw.execute(f"SELECT status, count(*) FROM lines {where} GROUP BY 1", args).fetchall())
    holds = dict(
        raw.execute(
            "SELECT h.reason, count(*) FROM line_holds h, lines l WHERE l.id = h.line_id "
            "AND h.lifted_at IS NULL " + ("AND l.mvno_id = %(m)s " if mvno_id else "") + "GROUP BY 1",
            args,
        ).fetchall()
    )
    stamps = raw.execute(f"SELECT activated_at, ended_at FROM lines {where}", args).fetchall()
    today = now.astimezone(CHINA).date()
    days = [today - timedelta(days=29 - i) for i in range(30)]
    activated = Counter(a.astimezone(CHINA).date() for a, _ in stamps)
    ended = Counter(e.astimezone(CHINA).date() for _, e in stamps if e is not None)
    people = raw.execute(
        f"SELECT real_name_status, count(*) FROM subscribers {where} GROUP BY 1", args
    ).fetchall()
    total = sum(n for _, n in people)
    verified = sum(n for status, n in people if status == "verified")
    return {
        "numbers_by_status": {
            s: numbers.get(s, 0) for s in ("available", "reserved", "in_use", "quarantined")
        },
        "lines_by_status": {s: lines.get(s, 0) for s in ("active", "suspended", "cancelled")},
        "open_holds_by_reason": dict(sorted(holds.items())),
        "daily": [
            {"date": d.isoformat(), "activations": activated[d], "cancellations": ended[d]} for d in days
        ],
        "subscribers": {
            "total": total,
            "verified": verified,
            "verified_share": round(verified / total, 4) if total else 0.0,
        },
    }


async def test_stats_match_independent_counts(
    client: httpx.AsyncClient,
    scene: Scene,
    operator: dict[str, str],
    regulator: dict[str, str],
    raw: psycopg.Connection,
    clock: ShiftableClock,
) -> None:
    lines = []
    for n in range(4):
        response = await scene.activate(client, scene.number(n))
        assert response.status_code == 201, response.text
        lines.append(response.json())
    hold = await client.post(
        f"/v1/lines/{lines[0]['id']}/holds", json={"reason": "loss_report"}, headers=scene.partner
    )
    assert hold.status_code == 201, hold.text
    await factories.create_subscriber(client, scene.partner, verified=False)
    # Spread the lines over China-time days: one activated 3 days ago just after local midnight (still
    # the previous UTC day), one ended yesterday, one activated 40 days ago (outside the window).
    now = clock.now()  # the app's clock (other tests may have pushed it forward)
    china_midnight = datetime.combine(now.astimezone(CHINA).date(), datetime.min.time(), CHINA)
    raw.execute(
        "UPDATE lines SET activated_at = %s WHERE id = %s",
        (china_midnight - timedelta(days=3) + timedelta(minutes=5), lines[1]["id"]),
    )
    raw.execute(
        "UPDATE lines SET status = 'cancelled', ended_at = %s, end_reason = 'cancelled' WHERE id = %s",
        (china_midnight - timedelta(hours=1), lines[2]["id"]),
    )
    raw.execute(
        "UPDATE lines SET activated_at = %s WHERE id = %s", (now - timedelta(days=40), lines[3]["id"])
    )

    mine = await client.get("/v1/stats", headers=scene.partner)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["mvno_id"] == scene.mvno_id
    want = expected(raw, scene.mvno_id, now)
    assert {k: body[k] for k in want} == want
    assert body["lines_by_status"] == {"active": 2, "suspended": 1, "cancelled": 1}
    assert sum(d["activations"] for d in body["daily"]) == 3  # the 40-day-old one is outside
    assert body["subscribers"]["verified_share"] == 0.5

    as_operator = await client.get("/v1/stats", params={"mvno_id": scene.mvno_id}, headers=operator)
    assert as_operator.json() == body
    everything = await client.get("/v1/stats", headers=regulator)
    assert everything.status_code == 200
    overall = everything.json()
    assert overall["mvno_id"] is None
    want_all = expected(raw, None, now)
    assert {k: overall[k] for k in want_all} == want_all


async def test_a_partner_asking_for_another_mvnos_stats_gets_404(
    client: httpx.AsyncClient, partner: dict[str, str], other_mvno: dict[str, Any], operator: dict[str, str]
) -> None:
    refused = await client.get("/v1/stats", params={"mvno_id": other_mvno["id"]}, headers=partner)
    factories.assert_problem(refused, 404, "not_found")
    missing = await client.get("/v1/stats", params={"mvno_id": "mvno_nope"}, headers=operator)
    factories.assert_problem(missing, 404, "not_found")
    unknown = await client.get("/v1/stats", params={"mvno": "x"}, headers=operator)
    factories.assert_problem(unknown, 422, "validation_error")
