"""Optional phase (``--takeover``, or standalone ``python -m bench.takeover``): an MVNO exit takeover of
≥ 1,000,000 numbers while another MVNO keeps activating lines over HTTP.

Set-up, in plain SQL (the bench's raw helpers): MVNO **exit** with ``--takeover-blocks`` blocks (default
100 → 1,000,000 numbers, segment 162, province 11), ``--takeover-subscribers`` verified subscribers
(default 20,000) with one line each (every tenth held), one verification each; every tenth person is also
a subscriber of **recv**, the receiver, so the takeover merges them. MVNO **busy** gets two blocks over
HTTP and 6,000 verified subscribers in SQL.

Measured, in one run:
1. the **floor**: the takeover's own moves as set-based SQL in ONE transaction, no batches, rolled back
   (``UPDATE blocks``, the subscribers statement with every subscriber at once, reservations);
2. **activations** by busy's partner key at concurrency 16 (``POST /v1/lines``, each on a fresh number):
   a baseline window, then ``POST /v1/takeovers`` (exit → recv) and the same load until ``GET
   /v1/takeovers/{id}`` says ``completed``. Reported: time to complete (202 → completed seen by a 100 ms
   poll), activations/s before and during, and the dip (goal: complete ≤ 15 s, dip ≤ 30 %);
3. afterwards every count is checked: exit holds nothing, recv holds every block, subscriber and line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from stdnum import luhn

from bench import database as db
from bench.measure import expect
from bench.phases import create_mvno
from bench.report import section
from bench.server import running_server
from mvno_core.takeovers import repository as takeover_rows

GOAL_SECONDS = 15.0
GOAL_DIP = 0.30
SEGMENT, HOST, PROVINCE = "162", "CTCC", "11"
BUSY_SUBSCRIBERS = 6000
CONCURRENCY = 16

_SUBSCRIBERS = """
INSERT INTO subscribers (
    id, mvno_id, kind, id_type, name_ciphertext, id_number_ciphertext, id_blind_index, name_masked,
    id_number_masked, real_name_status, verified_at, live_lines, created_at, updated_at, created_by_key_id
)
SELECT %(tag)s || lpad(i::text, 8, '0'), %(mvno)s, 'individual', 'resident_id',
       '\\x01026b31'::bytea || decode(md5(i::text) || md5('n' || i) || md5('m' || i), 'hex'),
       '\\x01026b31'::bytea || decode(md5('i' || i) || md5('j' || i) || md5('k' || i), 'hex'),
       decode(md5(%(person)s || i) || md5(%(person)s || 'x' || i), 'hex'), '张*',
       '110***********' || lpad((i %% 10000)::text, 4, '0'), 'verified', now(), %(live)s, now(), now(),
       'bench'
FROM generate_series(0, %(rows)s - 1) AS i WHERE i %% %(every)s = 0
"""
_VERIFICATIONS = """
INSERT INTO subscriber_verifications (id, subscriber_id, mvno_id, method, result, score, channel,
    status_after, recorded_at, recorded_by_key_id)
SELECT 'ver_' || s.id, s.id, s.mvno_id, 'in_person_face_match', 'passed', 95, 'store', 'verified', now(),
       'bench'
FROM subscribers s WHERE s.mvno_id = %(mvno)s
"""
_LINES = """
INSERT INTO lines (id, msisdn, subscriber_id, mvno_id, status, iccid, imsi, activated_at, created_by_key_id)
SELECT 'lin_tko_' || lpad(i::text, 8, '0'), %(segment)s || lpad(i::text, 8, '0'),
       'sub_tko_exit_' || lpad(i::text, 8, '0'), %(mvno)s,
       CASE WHEN i %% 10 = 0 THEN 'suspended' ELSE 'active' END,
       '8986' || lpad(i::text, 15, '0'), '46003' || lpad(i::text, 10, '0'), now(), 'bench'
FROM generate_series(0, %(rows)s - 1) AS i
"""
_HOLDS = """
INSERT INTO line_holds (id, line_id, msisdn, reason, placed_at, placed_by_key_id, placed_by_role)
SELECT 'hld_' || l.id, l.id, l.msisdn, 'user_request', now(), 'bench', 'partner'
FROM lines l WHERE l.mvno_id = %(mvno)s AND l.status = 'suspended'
"""
_NUMBERS_IN_USE = """
UPDATE numbers n SET status = 'in_use', line_id = l.id FROM lines l
WHERE l.mvno_id = %(mvno)s AND n.msisdn = l.msisdn
"""


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.takeover", description=__doc__)
    add_arguments(parser)
    return parser.parse_args()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--takeover-blocks", type=int, default=100, metavar="N", help="exit's blocks (100)")
    parser.add_argument(
        "--takeover-subscribers", type=int, default=20_000, metavar="N", help="exit's subscribers (20,000)"
    )
    parser.add_argument(
        "--takeover-baseline-seconds", type=float, default=6.0, metavar="S", help="activations before (6 s)"
    )


def _setup(
    conn: db.Connection, exit_id: str, recv_id: str, blocks: int, subscribers: int
) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    for first in range(0, blocks, 10):
        with conn.transaction():
            for k in range(first, min(first + 10, blocks)):
                db.insert_block(conn, db.RawBlock(f"{SEGMENT}{k:04d}", SEGMENT, HOST, PROVINCE, exit_id))
    timings["blocks_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    with conn.transaction():
        common = {"rows": subscribers, "person": "p"}
        conn.execute(_SUBSCRIBERS, {**common, "tag": "sub_tko_exit_", "mvno": exit_id, "live": 1, "every": 1})
        conn.execute(
            _SUBSCRIBERS, {**common, "tag": "sub_tko_recv_", "mvno": recv_id, "live": 0, "every": 10}
        )
        conn.execute(_VERIFICATIONS, {"mvno": exit_id})
        conn.execute(_LINES, {"rows": subscribers, "segment": SEGMENT, "mvno": exit_id})
        conn.execute(_HOLDS, {"mvno": exit_id})
        conn.execute(_NUMBERS_IN_USE, {"mvno": exit_id})
    timings["subscribers_lines_seconds"] = time.perf_counter() - started
    conn.execute("VACUUM (ANALYZE) numbers, blocks, subscribers, lines, line_holds, subscriber_verifications")
    return {key: round(value, 1) for key, value in timings.items()}


def _floor(conn: db.Connection, exit_id: str, recv_id: str, subscribers: int) -> float:
    """The takeover's moves as set-based SQL in one transaction, rolled back: what batching adds to."""
    move_subscribers = db.to_psycopg(str(takeover_rows._MOVE_SUBSCRIBERS.text))
    started = time.perf_counter()
    conn.execute("BEGIN")
    try:
        conn.execute("UPDATE blocks SET mvno_id = %s WHERE mvno_id = %s", (recv_id, exit_id))
        conn.execute(
            move_subscribers,
            {"from": exit_id, "to": recv_id, "batch": subscribers + 1, "now": datetime.now(UTC)},
        )
        conn.execute("UPDATE reservations SET mvno_id = %s WHERE mvno_id = %s", (recv_id, exit_id))
        return time.perf_counter() - started
    finally:
        conn.execute("ROLLBACK")


def _busy_numbers(conn: db.Connection, busy_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT n.msisdn FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix "
        "WHERE b.mvno_id = %s AND n.status = 'available' ORDER BY n.msisdn",
        (busy_id,),
    ).fetchall()
    return [row[0] for row in rows]


def _iccid(i: int) -> str:
    body = f"89869{i:013d}"  # never one of the exiting MVNO's ICCIDs (8986 + 0…)
    return body + luhn.calc_check_digit(body)


async def _load_with_takeover(
    base_url: str,
    partner: dict[str, str],
    operator: dict[str, str],
    numbers: list[str],
    busy_subscribers: list[str],
    takeover_body: dict[str, str],
    baseline_seconds: float,
) -> dict[str, Any]:
    done: list[float] = []
    failures: dict[str, int] = {}
    stop = asyncio.Event()
    work = iter(range(len(numbers)))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with (
        httpx.AsyncClient(
            base_url=base_url, headers=partner, timeout=60, trust_env=False, limits=limits
        ) as lines,
        httpx.AsyncClient(base_url=base_url, headers=operator, timeout=60, trust_env=False) as ops,
    ):

        async def activate() -> None:
            for i in work:
                if stop.is_set():
                    return
                response = await lines.post(
                    "/v1/lines",
                    json={
                        "subscriber_id": busy_subscribers[i // 4],
                        "msisdn": numbers[i],
                        "iccid": _iccid(i),
                        "imsi": f"46000{i:010d}",
                        "contract_end": "2030-01-01",
                    },
                )
                if response.status_code == 201:
                    done.append(time.perf_counter())
                else:
                    problem = response.json()
                    code = str(problem.get("code", response.status_code))
                    if code not in failures:
                        print(f"  first {code}: {problem.get('detail')} {problem.get('errors') or ''}")
                    failures[code] = failures.get(code, 0) + 1

        workers = [asyncio.create_task(activate()) for _ in range(CONCURRENCY)]
        t0 = time.perf_counter()
        await asyncio.sleep(baseline_seconds)
        mark = time.perf_counter()
        started = expect(await ops.post("/v1/takeovers", json=takeover_body), 202)
        accepted = time.perf_counter()
        status = started["status"]
        polls = 0
        while status != "completed":
            await asyncio.sleep(0.1)
            polls += 1
            status = (await ops.get(f"/v1/takeovers/{started['id']}")).json()["status"]
            if time.perf_counter() - accepted > 600:
                raise RuntimeError("takeover did not complete within 10 minutes")
        end = time.perf_counter()
        stop.set()
        await asyncio.gather(*workers)
    warm = t0 + 1.0  # the first second warms connections and the pool
    before = sum(1 for t in done if warm <= t < mark) / (mark - warm)
    during = sum(1 for t in done if mark <= t < end) / (end - mark)
    return {
        "takeover_id": started["id"],
        "complete_seconds": round(end - mark, 2),
        "post_seconds": round(accepted - mark, 3),
        "activations_per_second_before": round(before, 1),
        "activations_per_second_during": round(during, 1),
        "dip": round(max(0.0, 1 - during / before), 3) if before else None,
        "activations": len(done),
        "failures": failures,
        "polls": polls,
    }


def phase_takeover(
    conn: db.Connection,
    client: httpx.Client,
    base_url: str,
    operator: dict[str, str],
    *,
    blocks: int,
    subscribers: int,
    baseline_seconds: float,
) -> dict[str, Any]:
    section(
        f"Takeover: {blocks * 10_000:,} numbers, {subscribers:,} subscribers/lines, activations alongside"
    )
    exit_id = create_mvno(client, "tko-exit", "Exiting")
    recv_id = create_mvno(client, "tko-recv", "Receiving")
    busy_id = create_mvno(client, "tko-busy", "Busy")
    setup = _setup(conn, exit_id, recv_id, blocks, subscribers)
    print(f"  set-up in SQL: {setup}")
    for _ in range(2):
        expect(client.post(f"/v1/mvnos/{busy_id}/blocks", json={"segment": "1703", "province": "11"}), 201)
    conn.execute(
        _SUBSCRIBERS,
        {
            "rows": BUSY_SUBSCRIBERS,
            "person": "b",
            "tag": "sub_tko_busy_",
            "mvno": busy_id,
            "live": 0,
            "every": 1,
        },
    )
    busy_subscribers = [f"sub_tko_busy_{i:08d}" for i in range(BUSY_SUBSCRIBERS)]
    partner = {"Authorization": f"Bearer {db.create_partner_key(conn, busy_id)}"}
    floor = _floor(conn, exit_id, recv_id, subscribers)
    print(f"  floor (the same moves, one transaction, rolled back): {floor:.2f} s")
    # Flush the set-up's and the floor's writes now, not during the baseline window.
    conn.execute("VACUUM (ANALYZE) blocks, subscribers, lines, reservations")
    db.checkpoint(conn)
    run = asyncio.run(
        _load_with_takeover(
            base_url,
            partner,
            operator,
            _busy_numbers(conn, busy_id),
            busy_subscribers,
            {"from_mvno_id": exit_id, "to_mvno_id": recv_id, "reason": "bench: licence not renewed"},
            baseline_seconds,
        )
    )
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM blocks WHERE mvno_id = %(e)s), "
        "(SELECT count(*) FROM lines WHERE mvno_id = %(e)s), "
        "(SELECT count(*) FROM subscribers WHERE mvno_id = %(e)s AND merged_into IS NULL), "
        "(SELECT count(*) FROM blocks WHERE mvno_id = %(r)s), "
        "(SELECT count(*) FROM lines WHERE mvno_id = %(r)s), "
        "(SELECT count(*) FROM subscribers WHERE merged_into IS NOT NULL AND mvno_id = %(e)s), "
        "(SELECT status FROM mvnos WHERE id = %(e)s), (SELECT batches FROM takeovers WHERE id = %(t)s)",
        {"e": exit_id, "r": recv_id, "t": run["takeover_id"]},
    ).fetchone()
    assert counts is not None
    left = {"blocks": counts[0], "lines": counts[1], "subscribers": counts[2]}
    moved = {
        "blocks": counts[3],
        "lines": counts[4],
        "merged": counts[5],
        "exit_status": counts[6],
        "batches": counts[7],
    }
    ok_time = run["complete_seconds"] <= GOAL_SECONDS
    ok_dip = run["dip"] is not None and run["dip"] <= GOAL_DIP
    print(
        f"  takeover complete in {run['complete_seconds']} s (goal ≤ {GOAL_SECONDS:.0f} s: "
        f"{'met' if ok_time else 'MISSED'}); floor {floor:.2f} s; {moved['batches']} batches"
    )
    dip = "n/a" if run["dip"] is None else format(run["dip"], ".0%")
    print(
        f"  activations/s before {run['activations_per_second_before']}, during "
        f"{run['activations_per_second_during']}: dip {dip} "
        f"(goal ≤ {GOAL_DIP:.0%}: "
        f"{'met' if ok_dip else 'MISSED'}); failures {run['failures'] or 'none'}"
    )
    print(f"  left at exit: {left}; at recv: {moved}")
    if any(left.values()) or moved["blocks"] != blocks or moved["exit_status"] != "terminated":
        raise RuntimeError(f"takeover incomplete: left {left}, moved {moved}")
    return {"setup": setup, "floor_seconds": round(floor, 2), **run, "left": left, "moved": moved}


def main() -> None:
    args = _parse()
    os.environ.setdefault(
        "MVNO_PII_KEYS", __import__("mvno_core.subscribers.pii", fromlist=["x"]).generate_document()
    )
    database = db.prepare_database()
    print(f"  database: {db.DATABASE_NAME} on {database.where} (fresh, migrated)")
    with db.connect(database.url) as conn:
        operator = {"Authorization": f"Bearer {db.create_operator_key(conn)}"}
        with (
            running_server(database.url) as base_url,
            httpx.Client(base_url=base_url, headers=operator, timeout=120.0, trust_env=False) as client,
        ):
            phase_takeover(
                conn,
                client,
                base_url,
                operator,
                blocks=args.takeover_blocks,
                subscribers=args.takeover_subscribers,
                baseline_seconds=args.takeover_baseline_seconds,
            )


if __name__ == "__main__":
    main()
