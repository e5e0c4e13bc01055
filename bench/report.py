"""Output: section headings and query plans as the phases print them, the closing summary table, and the
figures written to bench/results/latest.json.
"""

from __future__ import annotations

import json
from typing import Any

from bench import database as db
from bench.scenario import SLOW_MS
from bench.server import REPO_ROOT

RESULTS_PATH = REPO_ROOT / "bench" / "results" / "latest.json"


def section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def print_plan(title: str, plan: str) -> None:
    print(f"\n{title}")
    for line in plan.splitlines():
        print(f"    {line}")


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
    lookups = results.get("identity_lookups")
    if lookups:
        n = f"{lookups['fill']['rows']:,}"
        for label, key in (
            ("operator", "http_operator"),
            ("partner", "http_partner"),
            ("in PostgreSQL", "postgres"),
        ):
            figures = lookups[key]
            goal = f"; goal ≤ {lookups['goal_p99_ms']:.0f} ms" if key == "http_operator" else ""
            rows.append(
                (
                    f"一证通查 on {n} subscribers, {label}",
                    _ms(figures["p50_ms"]),
                    "",
                    f"p50 in the median column; p99 {figures['p99_ms']:.1f} ms{goal}",
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


def _ms(value: float) -> str:
    return f"{value:.1f}"


def write_results(results: dict[str, Any]) -> None:
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nFigures written to {RESULTS_PATH.relative_to(REPO_ROOT)}")
