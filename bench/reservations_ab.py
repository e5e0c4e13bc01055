"""Specific-number reservations with an Idempotency-Key: this checkout's service, a baseline commit's
service and the raw-SQL limit, in one run, on one machine, on one database.

    python -m bench.reservations_ab [--baseline REF] [--requests N] [--concurrency C] [--rounds R]

Each variant reserves its own block's numbers (one number per request, distinct), ``concurrency``
requests in flight over keep-alive connections, from this process (the servers are separate processes).
The variants take turns, round by round, each going first in turn. The raw-SQL limit sends exactly what
the service sends for one reservation (the key's lock and lookup, the composed claim statement, COMMIT)
from ``concurrency`` psycopg connections: what is left is the service's own cost per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import database as db
from bench.phases import create_mvno
from bench.report import section
from bench.server import REPO_ROOT, running_server
from bench.stats import Latency
from mvno_core.audit import journal
from mvno_core.audit.journal import Subject
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.idempotency import IdempotencyClaim
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.principal import Principal, Role
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.statements import compose
from mvno_core.mvnos import statements as mvno_gates
from mvno_core.numbers import statements as number_moves
from mvno_core.reservations import statements as reservation_rows
from mvno_core.reservations.repository import CLAIM_RESULT
from mvno_core.reservations.schemas import ReservationRead

TTL_SECONDS = 3600


@dataclass
class Variant:
    name: str
    run_batch: Callable[[list[str]], Awaitable[tuple[float, list[float], int]]]
    numbers: list[str]
    throughput: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failures: int = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default=None, help="a commit to serve beside this checkout (git ref)")
    parser.add_argument("--requests", type=int, default=1000, help="reservations per variant per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


async def http_batch(base_url: str, headers: dict[str, str], msisdns: list[str], concurrency: int) -> Any:
    latencies: list[float] = []
    failures = 0
    queue = iter(msisdns)
    async with httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=60.0,
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:
        await asyncio.gather(*(client.get("/v1/segments") for _ in range(concurrency)))

        async def worker() -> None:
            nonlocal failures
            for msisdn in queue:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/reservations",
                    json={"msisdn": msisdn, "ttl_seconds": TTL_SECONDS},
                    headers={"Idempotency-Key": f"ab-{msisdn}"},
                )
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 201

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, failures


def raw_statements(msisdn: str, mvno_id: str, key_id: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
    """What the service sends for one reservation, built from the same pieces."""
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=TTL_SECONDS)
    reservation_id = new_id("rsv")
    ctx = RequestContext(
        session=None,  # type: ignore[arg-type]  # the pieces only read the caller and the time
        principal=Principal(key_id=key_id, role=Role.PARTNER, mvno_id=mvno_id),
        request_id=None,
        now=now,
        settings=Settings(database_url="postgresql://unused"),
        idempotency=IdempotencyClaim(api_key_id=key_id, key=f"raw-{msisdn}", fingerprint="f" * 64),
        method="POST",
        path="/v1/reservations",
    )
    read = ReservationRead(
        id=reservation_id,
        msisdn=msisdn,
        mvno_id=mvno_id,
        status="active",
        created_at=now,
        expires_at=expires_at,
        ended_at=None,
    )
    pieces = [
        mvno_gates.takes_new_business(name="mvno", mvno_id=mvno_id),
        *number_moves.claim_specific(
            name="claimed",
            msisdn=msisdn,
            mvno_id=mvno_id,
            reservation_id=reservation_id,
            reserved_until=expires_at,
            now=now,
            gate="mvno",
        ),
        reservation_rows.create(
            name="reservation",
            claimed="claimed",
            reservation_id=reservation_id,
            mvno_id=mvno_id,
            now=now,
            expires_at=expires_at,
            key_id=key_id,
        ),
        reservation_rows.end_lapsed(name="lapsed", source="claimed"),
        *journal.pieces(
            ctx,
            name="journal",
            only_if="EXISTS (SELECT 1 FROM claimed WHERE lapsed_reservation_id IS NULL)",
            action="reservation.created",
            subject=Subject("reservation", reservation_id),
            mvno_id=mvno_id,
            data={"msisdn": msisdn},
            event_type="number.reserved",
        ),
        *ctx.idempotency_pieces(Reply.of(read, 201), only_if="EXISTS (SELECT 1 FROM reservation)"),
    ]
    claim, claim_params = compose(pieces, CLAIM_RESULT)
    begin = (
        "SELECT pg_try_advisory_xact_lock(hashtextextended(%(scope)s, 0)) AS locked, k.fingerprint "
        "FROM (SELECT 1) AS one LEFT JOIN idempotency_keys k ON k.api_key_id = %(k)s AND k.key = %(key)s"
    )
    begin_params = {"scope": f"{key_id}:raw-{msisdn}", "k": key_id, "key": f"raw-{msisdn}"}
    return begin, begin_params, db.to_psycopg(str(claim)), claim_params


async def raw_batch(url: str, mvno_id: str, key_id: str, msisdns: list[str], concurrency: int) -> Any:
    latencies: list[float] = []
    failures = 0
    queue = iter(msisdns)
    connections = [await psycopg.AsyncConnection.connect(db.conninfo(url)) for _ in range(concurrency)]

    async def worker(conn: psycopg.AsyncConnection[Any]) -> None:
        nonlocal failures
        for msisdn in queue:
            begin, begin_params, claim, claim_params = raw_statements(msisdn, mvno_id, key_id)
            started = time.perf_counter()
            await conn.execute(begin, begin_params)
            row = await (await conn.execute(claim, claim_params)).fetchone()
            await conn.commit()
            latencies.append(time.perf_counter() - started)
            failures += row is None

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in connections))
        return time.perf_counter() - started, latencies, failures
    finally:
        for conn in connections:
            await conn.close()


def baseline_checkout(ref: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="mvno-baseline-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--force", str(folder), ref],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return folder


def remove_checkout(folder: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO_ROOT, check=False)


def main() -> None:
    args = parse_args()
    section("Set-up")
    database = db.prepare_database()
    print(f"  database: {db.DATABASE_NAME} on {database.where} (fresh, migrated)")
    baseline = baseline_checkout(args.baseline) if args.baseline else None
    try:
        run(args, database, baseline)
    finally:
        if baseline is not None:
            remove_checkout(baseline)


def run(args: argparse.Namespace, database: db.BenchDatabase, baseline: Path | None) -> None:
    with db.connect(database.url) as conn:
        operator = {"Authorization": f"Bearer {db.create_operator_key(conn)}"}
        with running_server(database.url) as current_url:
            with httpx.Client(base_url=current_url, headers=operator, timeout=120, trust_env=False) as client:
                mvno_id = create_mvno(client, "ab", "AB")
                prefixes = [
                    client.post(
                        f"/v1/mvnos/{mvno_id}/blocks", json={"segment": "171", "province": "11"}
                    ).json()["prefix"]
                    for _ in range(3)
                ]
            partner_secret = db.create_partner_key(conn, mvno_id)
            key_id = conn.execute("SELECT id FROM api_keys WHERE mvno_id = %s", (mvno_id,)).fetchone()[0]  # type: ignore[index]
            partner = {"Authorization": f"Bearer {partner_secret}"}
            per_variant = args.requests * args.rounds
            if per_variant > 10_000:
                raise SystemExit("--requests × --rounds must be ≤ 10,000 (one block per variant)")

            def numbers(block: int) -> list[str]:
                return [f"{prefixes[block]}{suffix:04d}" for suffix in range(per_variant)]

            variants = [
                Variant(
                    "service (this checkout)",
                    lambda batch: http_batch(current_url, partner, batch, args.concurrency),
                    numbers(0),
                ),
                Variant(
                    "raw SQL, same statements",
                    lambda batch: raw_batch(database.url, mvno_id, key_id, batch, args.concurrency),
                    numbers(1),
                ),
            ]
            if baseline is not None:
                baseline_url_holder: list[str] = []
                variants.insert(
                    1,
                    Variant(
                        f"service at {args.baseline}",
                        lambda batch: http_batch(baseline_url_holder[0], partner, batch, args.concurrency),
                        numbers(2),
                    ),
                )
                with running_server(database.url, checkout=baseline) as baseline_url:
                    baseline_url_holder.append(baseline_url)
                    measure(args, variants)
            else:
                measure(args, variants)
    report(args, variants)


def measure(args: argparse.Namespace, variants: list[Variant]) -> None:
    section(
        f"Specific-number reservations with Idempotency-Key: {args.requests} per variant per round, "
        f"concurrency {args.concurrency}, {args.rounds} rounds"
    )
    for round_no in range(args.rounds):
        order = variants[round_no % len(variants) :] + variants[: round_no % len(variants)]
        for variant in order:
            batch = variant.numbers[round_no * args.requests : (round_no + 1) * args.requests]
            seconds, latencies, failures = asyncio.run(variant.run_batch(batch))
            variant.throughput.append(len(batch) / seconds)
            variant.latencies += latencies
            variant.failures += failures
            print(f"  round {round_no + 1}: {variant.name:<28} {len(batch) / seconds:8.0f}/s", flush=True)


def report(args: argparse.Namespace, variants: list[Variant]) -> None:
    section("Summary (median of rounds)")
    raw = next(v for v in variants if v.name.startswith("raw"))
    raw_rate = statistics.median(raw.throughput)
    print(f"  {'variant':<30} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of raw':>7} {'failed':>7}")
    summary = []
    for variant in variants:
        rate = statistics.median(variant.throughput)
        ordered = sorted(variant.latencies)
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
        print(
            f"  {variant.name:<30} {rate:8.0f} {p50:8.2f} {p99:8.2f} {rate / raw_rate:7.0%} "
            f"{variant.failures:>7}"
        )
        summary.append(
            {
                "variant": variant.name,
                "per_second": round(rate),
                "p50_ms": round(p50, 2),
                "p99_ms": round(p99, 2),
                "failures": variant.failures,
                "latency": Latency.of(variant.latencies).as_dict(),
            }
        )
    print(json.dumps({"reservations_ab": summary}, ensure_ascii=False))


if __name__ == "__main__":
    main()
