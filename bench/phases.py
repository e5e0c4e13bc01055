"""The benchmark's phases, in the order bench/run.py calls them: each prints its section and returns its
figures for bench/results/latest.json.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from bench import database as db
from bench.measure import (
    ReservationRun,
    SearchCase,
    collector_paused,
    expect,
    measure_allocation,
    measure_search,
    reserve_concurrently,
    reserve_pattern,
)
from bench.report import print_plan, section
from bench.scenario import (
    ALLOCATION_GOAL,
    EXPLAINED_PATTERN,
    FILL_HOST,
    FILL_SEGMENT,
    HTTP_SEGMENT,
    MATURE_IN_USE_SHARE,
    MATURE_RESERVED,
    OPERATOR,
    OPERATOR_CASES,
    PAGE_LIMIT,
    PARTNER,
    RESERVE_CONCURRENCY,
    RESERVE_PATTERN,
    RESERVE_PATTERN_COUNT,
    RESERVE_TOTAL,
    SLOW_MS,
    partner_cases,
)
from bench.stats import Latency
from mvno_core.reference.data import BLOCK_SIZE, PROVINCES

# --- set-up -------------------------------------------------------------------------------------------


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


# --- workload -----------------------------------------------------------------------------------------


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


# --- query plans and index use ------------------------------------------------------------------------


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
