"""Optional phase (``--ledger``): audit verification at ≥ 1M audit rows and event-feed lag under the
reservation load.

* **Verify**: ``--ledger-audit-rows`` (default 1,000,000) audit rows are written straight into
  ``audit_entries`` (unlinked, with their real content hashes, via COPY); then, over HTTP,
  ``GET /v1/audit/verify`` links them all (the sequencer) and walks the chain once; an incremental
  verify with nothing new; one after 1,000 new rows; and ``?full=true`` (the whole chain re-walked).
* **Feed lag**: reservations at concurrency 16 while a watcher polls ``events`` every 2 ms over its own
  connection. Lag is from the moment the client has the 201 (the transaction committed before the
  response left) to the moment the event has a position, i.e. is visible to the next feed poll: the
  in-server feed sequencer, woken by the commit, positions it in between. A consumer's own poll
  interval and round trip come on top.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg

from bench import database as db
from bench.report import section
from mvno_core.audit.hashing import content_hash

LAG_RESERVATIONS = 2000
LAG_CONCURRENCY = 16
AUDIT_COLUMNS = (
    "id, recorded_at, actor_key_id, actor_role, actor_mvno_id, action, subject_kind, subject_id, "
    "mvno_id, request_id, data, content_hash"
)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def fill_audit(conn: db.Connection, rows: int, *, tag: str) -> float:
    """COPY ``rows`` unlinked audit entries with their real content hashes; returns seconds."""
    started = time.perf_counter()
    at = datetime.now(UTC)
    with conn.cursor() as cur, cur.copy(f"COPY audit_entries ({AUDIT_COLUMNS}) FROM STDIN") as copy:
        for n in range(rows):
            entry_id = f"aud_{tag}{n:012d}"
            data = {"n": n, "reason": "bench"}
            digest = content_hash(
                entry_id=entry_id,
                recorded_at=at,
                actor_key_id="key_bench",
                actor_role="operator",
                actor_mvno_id=None,
                action="bench.filled",
                subject_kind="bench",
                subject_id=str(n),
                mvno_id=None,
                request_id=None,
                data=data,
            )
            row = (entry_id, at, "key_bench", "operator", None, "bench.filled", "bench", str(n), None, None)
            copy.write_row((*row, json.dumps(data), digest))
    conn.commit()
    return time.perf_counter() - started


def _timed_verify(client: httpx.Client, **params: str) -> dict[str, Any]:
    started = time.perf_counter()
    response = client.get("/v1/audit/verify", params=params, timeout=600.0)
    seconds = time.perf_counter() - started
    body = response.json()
    if response.status_code != 200 or not body.get("ok"):
        raise RuntimeError(f"verify failed: {response.status_code} {body}")
    return {"seconds": round(seconds, 3), "checked": body["checked"], "length": body["length"]}


def phase_verify(conn: db.Connection, client: httpx.Client, rows: int) -> dict[str, Any]:
    section(f"Audit verify at ≥ {rows:,} audit rows")
    filled = fill_audit(conn, rows, tag="bench")
    print(f"  {rows:,} unlinked audit rows written by COPY in {filled:.1f} s")
    results = {"rows_written": rows, "fill_seconds": round(filled, 1)}
    results["link_and_first_verify"] = first = _timed_verify(client)
    print(f"  first verify (links {first['length']:,} rows, walks them): {first['seconds']:8.2f} s")
    results["incremental_nothing_new"] = idle = _timed_verify(client)
    print(
        f"  incremental verify, nothing new:          {idle['seconds']:8.3f} s  (checked {idle['checked']})"
    )
    fill_audit(conn, 1000, tag="more")
    results["incremental_after_1000"] = inc = _timed_verify(client)
    print(f"  incremental verify after 1,000 new rows:  {inc['seconds']:8.3f} s  (checked {inc['checked']})")
    results["full"] = full = _timed_verify(client, full="true")
    print(
        f"  full verify (?full=true):                 {full['seconds']:8.2f} s  (checked {full['checked']:,})"
    )
    return results


async def _feed_lag(
    database_url: str, base_url: str, headers: dict[str, str], mvno_id: str
) -> dict[str, Any]:
    answered: dict[str, float] = {}
    positioned: dict[str, float] = {}
    failures = 0
    remaining = iter(range(LAG_RESERVATIONS))
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=LAG_CONCURRENCY, max_keepalive_connections=LAG_CONCURRENCY)
    async with (
        await psycopg.AsyncConnection.connect(db.conninfo(database_url), autocommit=True) as watcher,
        httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=60.0, trust_env=False, limits=limits
        ) as client,
    ):
        row = await (await watcher.execute("SELECT coalesce(max(position), 0) FROM events")).fetchone()
        after = int(row[0]) if row else 0

        async def watch() -> None:
            # Polls the table the feed reads, every 2 ms: an event is visible to the feed from the
            # moment it has a position. (Polling over HTTP would add the loaded server's latency.)
            nonlocal after
            while not done.is_set() or len(positioned) < len(answered):
                rows = await (
                    await watcher.execute(
                        "SELECT position, type, data->>'msisdn' FROM events WHERE position > %s "
                        "ORDER BY position LIMIT 5000",
                        (after,),
                    )
                ).fetchall()
                now = time.perf_counter()
                for position, kind, msisdn in rows:
                    after = max(after, int(position))
                    if kind == "number.reserved":
                        positioned.setdefault(msisdn, now)
                await asyncio.sleep(0.002)

        async def worker() -> None:
            nonlocal failures
            for _ in remaining:
                response = await client.post(
                    "/v1/reservations", json={"criteria": {}, "ttl_seconds": 3600, "mvno_id": mvno_id}
                )
                if response.status_code == 201:
                    answered[response.json()["msisdn"]] = time.perf_counter()
                else:
                    failures += 1

        watching = asyncio.create_task(watch())
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(LAG_CONCURRENCY)))
        seconds = time.perf_counter() - started
        done.set()
        await asyncio.wait_for(watching, 60)
    # Positioned before the client even had its 201 counts as 0: the commit precedes the response.
    lags = [max(0.0, positioned[m] - t) for m, t in answered.items()]
    return {
        "reservations": len(answered),
        "failures": failures,
        "per_second": round(len(answered) / seconds, 1),
        "positioned_before_response": sum(1 for m, t in answered.items() if positioned[m] <= t),
        "lag_p50_ms": round(_percentile(lags, 0.50) * 1000, 2),
        "lag_p99_ms": round(_percentile(lags, 0.99) * 1000, 2),
        "lag_max_ms": round(max(lags) * 1000, 2),
    }


def phase_feed_lag(database_url: str, base_url: str, headers: dict[str, str], mvno_id: str) -> dict[str, Any]:
    section(f"Event feed lag under load: {LAG_RESERVATIONS} reservations at concurrency {LAG_CONCURRENCY}")
    result = asyncio.run(_feed_lag(database_url, base_url, headers, mvno_id))
    print(
        f"  {result['reservations']} reserved ({result['per_second']}/s, {result['failures']} failed); "
        f"201 received → positioned (visible to the feed): p50 {result['lag_p50_ms']} ms, "
        f"p99 {result['lag_p99_ms']} ms, max {result['lag_max_ms']} ms; "
        f"{result['positioned_before_response']} already positioned when the 201 arrived"
    )
    return result
