"""Optional phase (``--pii``, or standalone ``python -m bench.pii``): the PII key rotation and the
retention purge on ≥ 1,000,000 subscribers, each beside its raw-SQL limit measured in the same run.

Set-up, in plain SQL: ``--pii-subscribers`` rows (default 1,000,000) in two MVNOs, every one with a real
identity: a name and a valid resident ID (``identity.person_id_number``) sealed with AES-256-GCM by the
service's own ``pii.KeyRing`` under key ``k1`` (bound to the row's id, as the service seals them), the
blind index from the same ring, the masks from ``pii``. Each was last served ``retention + 30`` days ago
(``updated_at``; no lines, ``live_lines = 0``), so every one is past retention on the real clock.

Measured, in this order (each floor first, in a transaction that is rolled back, then ``VACUUM`` so the
service's run starts from a clean table):

1. **Key rotation** (``k2`` made active beside ``k1``):
   * floor: every row's ciphertexts read in one ``SELECT``, decrypted and re-sealed in this process with
     the same ``KeyRing`` calls, ``COPY``'d to a temporary table and written by ONE ``UPDATE … FROM`` —
     no batches, no locks, no audit. Its parts are shown; the SQL-only part (``UPDATE``) alone too.
   * service: ``mvno-core pii rotate-key`` (the command, as a child process, default batch) until it
     reports ``0 left``; then no row may remain under ``k1`` and a sample must decrypt with ``k2`` alone.
2. **Retention purge**:
   * floor: the purge's own ``UPDATE`` (``repository.purge_due``'s) over every due row as ONE statement,
     no ``LIMIT``/``SKIP LOCKED``; and the same with its journal (one audit row and one event per
     subscriber, hashed with ``sha256`` in SQL) in the same statement.
   * service: the sweeper's purge step, batch by batch as ``sweep_once`` runs it (``PURGE_BATCH`` per
     transaction, each batch audited and evented), until a batch comes back short; every row must be
     purged and have its audit entry.

Rates are subscribers per second over the whole job.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench import database as db
from bench.identity import person_id_number
from bench.report import section
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.principal import SYSTEM
from mvno_core.ops.sweeper import PURGE_BATCH
from mvno_core.subscribers import pii, retention

DEFAULT_SUBSCRIBERS = 1_000_000
OLD_KEY, NEW_KEY = "k1", "k2"
PAST_RETENTION_DAYS = 30
NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "欧阳娜娜", "杨磊", "赵敏")
SAMPLE = 200  # rows decrypted with the new key alone after the rotation

_MVNOS = """
INSERT INTO mvnos (id, code, name, legal_name, license_no, hosts, licensed_provinces, status, created_at,
                   updated_at)
VALUES (%(id)s, %(code)s, %(name)s, %(name)s, %(name)s, ARRAY['CMCC'], ARRAY['11'], 'active', now(), now())
"""
_COPY_SUBSCRIBERS = (
    "COPY subscribers (id, mvno_id, kind, id_type, name_ciphertext, id_number_ciphertext, id_blind_index, "
    "name_masked, id_number_masked, real_name_status, verified_at, live_lines, created_at, updated_at, "
    "created_by_key_id) FROM STDIN"
)
# The purge's WHERE and SET (subscribers/repository.purge_due), without its LIMIT and SKIP LOCKED.
_PURGE_WHERE = (
    "s.live_lines = 0 AND s.purged_at IS NULL AND s.updated_at <= %(before)s "
    "AND NOT EXISTS (SELECT 1 FROM lines l WHERE l.subscriber_id = s.id "
    "AND (l.status <> 'cancelled' OR l.ended_at > %(before)s))"
)
_PURGE_SET = (
    "name_ciphertext = NULL, id_number_ciphertext = NULL, id_blind_index = NULL, purged_at = %(now)s, "
    "real_name_status = 'unverified', verified_at = NULL, updated_at = %(now)s"
)
_PURGE_FLOOR = f"UPDATE subscribers s SET {_PURGE_SET} WHERE {_PURGE_WHERE}"
# The same, with the journal the service writes per subscriber, set-based: the content hash in SQL.
_PURGE_JOURNAL_FLOOR = f"""
WITH purged AS (
    UPDATE subscribers s SET {_PURGE_SET} WHERE {_PURGE_WHERE} RETURNING s.id, s.mvno_id, s.id_type
), audit AS (
    INSERT INTO audit_entries (id, recorded_at, actor_key_id, actor_role, actor_mvno_id, action,
                               subject_kind, subject_id, mvno_id, request_id, data, content_hash)
    SELECT 'aud_floor' || p.id, %(now)s, 'system', 'operator', NULL, 'subscriber.purged', 'subscriber', p.id,
           p.mvno_id, NULL, jsonb_build_object('id_type', p.id_type, 'retention_days', %(days)s),
           encode(sha256(convert_to(p.id || p.mvno_id || p.id_type || %(now)s::text, 'UTF8')), 'hex')
    FROM purged p
)
INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data)
SELECT 'evt_floor' || p.id, 'subscriber.purged', %(now)s, p.mvno_id, 'subscriber', p.id,
       jsonb_build_object('id_type', p.id_type, 'retention_days', %(days)s)
FROM purged p
"""


def key_documents() -> tuple[str, str]:
    """(the ring with ``k1`` active, the same ring with ``k2`` added and active)."""

    def fresh() -> str:
        return base64.b64encode(os.urandom(pii.KEY_BYTES)).decode()

    keys, blind = {OLD_KEY: fresh()}, fresh()
    before = json.dumps({"active": OLD_KEY, "keys": keys, "blind_index_key": blind})
    after = json.dumps({"active": NEW_KEY, "keys": {**keys, NEW_KEY: fresh()}, "blind_index_key": blind})
    return before, after


def _rows(
    ring: pii.KeyRing, rows: int, mvnos: tuple[str, str], served: datetime
) -> Iterator[tuple[Any, ...]]:
    for i in range(rows):
        subscriber_id = f"sub_pii{i:010d}"
        name, id_number = NAMES[i % len(NAMES)], person_id_number(i)
        # Spread over a day, so the purge's ORDER BY updated_at has an order to follow.
        at = served - timedelta(seconds=i % 86_400)
        yield (
            subscriber_id,
            mvnos[i % 2],
            "individual",
            "resident_id",
            ring.encrypt(name, context=f"subscriber:{subscriber_id}:name"),
            ring.encrypt(id_number, context=f"subscriber:{subscriber_id}:id_number"),
            ring.blind_index("resident_id", id_number),
            pii.mask_name(name),
            pii.mask_id_number(id_number),
            "verified",
            at,
            0,
            at,
            at,
            "bench",
        )


def fill(conn: db.Connection, ring: pii.KeyRing, rows: int, retention_days: int) -> dict[str, Any]:
    mvnos = (new_id("mvno"), new_id("mvno"))
    served = datetime.now(UTC) - timedelta(days=retention_days + PAST_RETENTION_DAYS)
    started = time.perf_counter()
    with conn.transaction():
        for mvno_id, code in zip(mvnos, ("pii-a", "pii-b"), strict=True):
            conn.execute(_MVNOS, {"id": mvno_id, "code": code, "name": f"{code} MVNO"})
        with conn.cursor().copy(_COPY_SUBSCRIBERS) as copy:
            for row in _rows(ring, rows, mvnos, served):
                copy.write_row(row)
    fill_seconds = time.perf_counter() - started
    vacuum_seconds = vacuum(conn)
    print(
        f"  {rows:,} subscribers sealed under {OLD_KEY} and COPY'd in {fill_seconds:.1f} s "
        f"(VACUUM ANALYZE {vacuum_seconds:.1f} s), all last served {retention_days}+"
        f"{PAST_RETENTION_DAYS} days ago"
    )
    return {"rows": rows, "fill_seconds": round(fill_seconds, 1)}


def vacuum(conn: db.Connection) -> float:
    """VACUUM (ANALYZE) the tables a rolled-back floor left dead rows in, before the next run."""
    started = time.perf_counter()
    for table in ("subscribers", "audit_entries", "events"):
        conn.execute(f"VACUUM (ANALYZE) {table}")
    return time.perf_counter() - started


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def _line(label: str, rows: int, seconds: float) -> str:
    return f"  {label:<58} {seconds:8.2f} s   {rows / seconds:>10,.0f} subscribers/s"


def rotation_floor(conn: db.Connection, ring: pii.KeyRing) -> dict[str, Any]:
    """Read, re-seal, write every row with no batching, locking or audit; rolled back."""
    timings: dict[str, float] = {}
    with conn.transaction() as tx:
        started = time.perf_counter()
        rows = conn.execute("SELECT id, name_ciphertext, id_number_ciphertext FROM subscribers").fetchall()
        timings["read"] = time.perf_counter() - started
        started = time.perf_counter()
        resealed = []
        for subscriber_id, name, number in rows:
            name_context = f"subscriber:{subscriber_id}:name"
            id_context = f"subscriber:{subscriber_id}:id_number"
            resealed.append(
                (
                    subscriber_id,
                    ring.encrypt(ring.decrypt(name, context=name_context), context=name_context),
                    ring.encrypt(ring.decrypt(number, context=id_context), context=id_context),
                )
            )
        timings["crypto"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("CREATE TEMP TABLE bench_resealed (id text, name bytea, id_number bytea) ON COMMIT DROP")
        with conn.cursor().copy("COPY bench_resealed (id, name, id_number) FROM STDIN") as copy:
            for row in resealed:
                copy.write_row(row)
        timings["copy"] = time.perf_counter() - started
        started = time.perf_counter()
        updated = conn.execute(
            "UPDATE subscribers s SET name_ciphertext = r.name, id_number_ciphertext = r.id_number "
            "FROM bench_resealed r WHERE s.id = r.id"
        ).rowcount
        timings["update"] = time.perf_counter() - started
        raise psycopg.Rollback(tx)
    vacuum(conn)
    total = sum(timings.values())
    n = len(rows)
    print(_line("floor: SELECT all, in one statement", n, timings["read"]))
    print(_line("floor: decrypt + re-seal in this process (KeyRing)", n, timings["crypto"]))
    print(_line("floor: COPY to a temporary table", n, timings["copy"]))
    print(_line(f"floor: ONE UPDATE … FROM of {updated:,} rows", n, timings["update"]))
    print(_line("floor: all of it (rolled back)", n, total))
    return {
        "rows": n,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "per_second": _rate(n, total),
        "update_per_second": _rate(n, timings["update"]),
    }


def rotation_service(url: str, keys_after: str, timeout: float | None) -> dict[str, Any]:
    """``mvno-core pii rotate-key`` as an operator runs it (its default batch), until it ends."""
    env = {**os.environ, "MVNO_DATABASE_URL": url, "MVNO_PII_KEYS": keys_after}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mvno_core.cli", "pii", "rotate-key"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"seconds": time.perf_counter() - started, "timed_out": True}
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pii rotate-key failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return {"seconds": seconds, "timed_out": False, "batches": len(lines) - 1, "last_line": lines[-1]}


def check_rotation(conn: db.Connection, ring_after: pii.KeyRing) -> tuple[int, int]:
    """(rows under the new key, rows under any other); a sample must decrypt with the new key alone."""
    counts = dict(
        conn.execute(
            "SELECT convert_from(substring(name_ciphertext from 3 for get_byte(name_ciphertext, 1)), "
            "'UTF8') = %s, count(*) FROM subscribers GROUP BY 1",
            (NEW_KEY,),
        ).fetchall()
    )
    only_new = pii.KeyRing(NEW_KEY, {NEW_KEY: ring_after.keys[NEW_KEY]}, ring_after.blind_index_key)
    # Of the rows under the new key (a stopped run leaves some under the old one).
    sample = conn.execute(
        "SELECT id, name_ciphertext, id_number_ciphertext FROM subscribers "
        "WHERE substring(name_ciphertext from 3 for get_byte(name_ciphertext, 1)) = convert_to(%s, 'UTF8') "
        "ORDER BY random() LIMIT %s",
        (NEW_KEY, SAMPLE),
    ).fetchall()
    for subscriber_id, name, number in sample:
        only_new.decrypt(name, context=f"subscriber:{subscriber_id}:name")
        only_new.decrypt(number, context=f"subscriber:{subscriber_id}:id_number")
    return counts.get(True, 0), counts.get(False, 0)


def phase_rotation(
    conn: db.Connection, url: str, keys_after: str, rows: int, timeout: float | None
) -> dict[str, Any]:
    section(f"PII key rotation {OLD_KEY} → {NEW_KEY} on {rows:,} subscribers: rotate-key vs its floor")
    ring_after = pii.parse_keyring(keys_after)
    floor = rotation_floor(conn, ring_after)
    service = rotation_service(url, keys_after, timeout)
    under_new, under_old = check_rotation(conn, ring_after)
    if service["timed_out"]:
        print(
            f"  mvno-core pii rotate-key: STOPPED after {service['seconds']:.0f} s (--rotation-timeout), "
            f"{under_new:,} of {rows:,} done"
        )
        seconds = service["seconds"]
    else:
        if under_old:
            raise SystemExit(f"rotation left {under_old:,} rows under another key")
        seconds = service["seconds"]
        print(_line(f"mvno-core pii rotate-key ({service['batches']} batches)", under_new, seconds))
    per_second = _rate(under_new, seconds)
    ratio = floor["per_second"] / per_second if per_second else float("inf")
    print(f"  floor/service = {ratio:.1f}× (the service's rate is 1/{ratio:.1f} of the floor's)")
    vacuum(conn)
    return {
        "rows": rows,
        "rotated": under_new,
        "seconds": round(seconds, 2),
        "timed_out": service["timed_out"],
        "per_second": per_second,
        "floor": floor,
        "ratio": round(ratio, 2),
    }


def purge_floor(conn: db.Connection, retention_days: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    params = {"before": now - timedelta(days=retention_days), "now": now, "days": retention_days}
    figures: dict[str, Any] = {}
    for key, label, statement in (
        ("update", "floor: the purge UPDATE as ONE statement", _PURGE_FLOOR),
        ("journal", "floor: the same + audit row + event each, ONE statement", _PURGE_JOURNAL_FLOOR),
    ):
        with conn.transaction() as tx:
            started = time.perf_counter()
            cursor = conn.execute(statement, params)
            seconds = time.perf_counter() - started
            n = cursor.rowcount
            raise psycopg.Rollback(tx)
        vacuum(conn)
        print(_line(f"{label} (rolled back)", n, seconds))
        figures[key] = {"rows": n, "seconds": round(seconds, 2), "per_second": _rate(n, seconds)}
    return figures


async def purge_service(url: str, settings: Settings) -> tuple[int, list[float], float]:
    """The sweeper's purge step: ``PURGE_BATCH`` per transaction until a batch comes back short, as
    ``sweep_once`` drains it. Returns (purged, each batch's seconds, seconds)."""
    database = Database(url, pool_size=1, max_overflow=0)
    purged = 0
    batches: list[float] = []
    started = time.perf_counter()
    try:
        while True:
            batch_started = time.perf_counter()
            async with database.transaction() as session:
                now = datetime.now(UTC)
                ctx = RequestContext(
                    session=session, principal=SYSTEM, request_id=None, now=now, settings=settings
                )
                done = await retention.purge_expired(ctx, batch=PURGE_BATCH)
            purged += done
            batches.append(time.perf_counter() - batch_started)
            if done < PURGE_BATCH:
                break
    finally:
        await database.dispose()
    return purged, batches, time.perf_counter() - started


def phase_purge(conn: db.Connection, url: str, rows: int, settings: Settings) -> dict[str, Any]:
    days = settings.pii_retention_days
    section(f"Retention purge of {rows:,} subscribers past {days} days: the sweeper vs its floor")
    floor = purge_floor(conn, days)
    purged, batch_seconds, seconds = asyncio.run(purge_service(url, settings))
    batches = len(batch_seconds)
    print(_line(f"sweeper purge step ({batches} batches of {PURGE_BATCH})", purged, seconds))
    # A batch that grows slower as the job goes on is a walk over what earlier batches did.
    tenth = max(1, batches // 10)
    first, last = batch_seconds[:tenth], batch_seconds[-tenth - 1 : -1] or batch_seconds[-1:]
    print(
        f"  a batch took {sum(first) / len(first) * 1000:.0f} ms on average in the first tenth, "
        f"{sum(last) / len(last) * 1000:.0f} ms in the last"
    )
    left, audited = conn.execute(
        "SELECT (SELECT count(*) FROM subscribers WHERE purged_at IS NULL), "
        "(SELECT count(*) FROM audit_entries WHERE action = 'subscriber.purged')"
    ).fetchone() or (None, None)
    if left != 0 or audited != purged or purged != rows:
        raise SystemExit(f"purge: {purged:,} purged of {rows:,}, {left} left, {audited} audit entries")
    per_second = _rate(purged, seconds)
    for key, label in (("update", "UPDATE only"), ("journal", "UPDATE + journal")):
        ratio = floor[key]["per_second"] / per_second
        print(f"  floor ({label})/service = {ratio:.1f}×")
    return {
        "rows": rows,
        "purged": purged,
        "batches": batches,
        "seconds": round(seconds, 2),
        "per_second": per_second,
        "floor": floor,
        "ratio": round(floor["journal"]["per_second"] / per_second, 2),
    }


def phase_pii(url: str, rows: int, *, rotation_timeout: float | None = None) -> dict[str, Any]:
    """Both measurements on their own database ``url`` (fresh, migrated, holding nothing else: the
    rotation re-seals every subscriber in it, so other phases' rows must not be there)."""
    keys_before, keys_after = key_documents()
    settings = Settings()
    section(f"PII at rest on {rows:,} subscribers: set-up")
    with db.connect(url) as conn:
        results: dict[str, Any] = {
            "fill": fill(conn, pii.parse_keyring(keys_before), rows, settings.pii_retention_days)
        }
        results["rotation"] = phase_rotation(conn, url, keys_after, rows, rotation_timeout)
        results["purge"] = phase_purge(conn, url, rows, settings)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pii-subscribers",
        type=int,
        default=DEFAULT_SUBSCRIBERS,
        metavar="N",
        help=f"subscribers for the PII phase (default {DEFAULT_SUBSCRIBERS:,})",
    )
    parser.add_argument(
        "--rotation-timeout",
        type=float,
        default=None,
        metavar="S",
        help="stop rotate-key after S seconds and report the rate so far (default: no limit)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pii", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    database = db.prepare_database()
    print(f"  database: {db.DATABASE_NAME} on {database.where} (fresh, migrated)")
    results = phase_pii(database.url, args.pii_subscribers, rotation_timeout=args.rotation_timeout)
    print(json.dumps({"pii": results}))


if __name__ == "__main__":
    main()
