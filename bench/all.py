"""``make bench``: every benchmark in one run, then one table (measure | service | raw-SQL limit in the
same run | ratio | goal).

    python -m bench.all [--baseline REF] [--seconds 20] [--quick | --full]

1. ``bench.run``: block allocation (HTTP vs the same INSERT … SELECT), reservations, search on 1M numbers;
   with ``--full`` also its heavy phases: 一证通查 on 1,000,000 subscribers, audit verify at 1,000,000
   rows and feed lag, and the takeover of 1,000,000 numbers while another MVNO activates (about 15 more
   minutes).
2. ``bench.reservations_ab``: specific-number reservations with an Idempotency-Key, this checkout vs the
   commit before the statement-piece work (``--baseline``, default ``c7106cc``) vs the same statements in
   raw SQL.
3. ``bench.activations``: activations over HTTP (1 and 2 uvicorn workers) vs the same full activation as
   one statement in pgbench.

Each step is its own process (each starts its own throw-away PostgreSQL), so one step's data never
slows the next.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from bench.report import RESULTS_PATH, section

BASELINE = "c7106cc"  # main before numbers' statement pieces and the one-round-trip reservation


def run_step(module: str, *args: str) -> list[str]:
    section(f"python -m {module} {' '.join(args)}".strip())
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)  # progress as it happens
        lines.append(line)
    if process.wait() != 0:
        raise SystemExit(f"{module} failed (exit {process.returncode})")
    return lines


def last_json(lines: list[str], key: str) -> Any:
    for line in reversed(lines):
        if line.startswith("{") and f'"{key}"' in line:
            return json.loads(line)[key]
    raise SystemExit(f"no {key} figures in the output")


def heavy_rows(core: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Rows of ``--full``'s phases, when they ran."""
    rows: list[tuple[str, str, str, str, str]] = []
    lookups = core.get("identity_lookups")
    if lookups:
        http, sql = lookups["http_operator"], lookups["postgres"]
        rows.append(
            (
                "一证通查 on 1M subscribers, p99",
                f"{http['p99_ms']:.1f} ms",
                f"{sql['p99_ms']:.1f} ms",
                f"{http['p99_ms'] / sql['p99_ms']:.1f}×" if sql["p99_ms"] else "",
                "≤ 10 ms",
            )
        )
    verify = core.get("audit_verify")
    if verify:
        rows.append(
            (
                "audit verify, incremental (1,000 new rows)",
                f"{verify['incremental_after_1000']['seconds']:.2f} s",
                "",
                "",
                "",
            )
        )
        rows.append(("audit verify, full walk", f"{verify['full']['seconds']:.1f} s", "", "", ""))
    lag = core.get("feed_lag")
    if lag:
        rows.append(
            (
                "feed lag p50 / p99 under reservation load",
                f"{lag['lag_p50_ms']:.0f} / {lag['lag_p99_ms']:.0f} ms",
                "",
                "",
                "",
            )
        )
    takeover = core.get("takeover")
    if takeover:
        rows.append(
            (
                "takeover of 1M numbers",
                f"{takeover['complete_seconds']:.1f} s",
                f"{takeover['floor_seconds']:.1f} s",
                f"{takeover['complete_seconds'] / takeover['floor_seconds']:.1f}×",
                "≤ 15 s",
            )
        )
        if takeover.get("dip") is not None:
            rows.append(("activation dip during the takeover", f"{takeover['dip']:.0%}", "", "", "≤ 30%"))
    pii = core.get("pii")
    if pii:
        rotation, purge = pii["rotation"], pii["purge"]
        n = f"{rotation['rows'] // 1_000_000}M" if rotation["rows"] >= 1_000_000 else f"{rotation['rows']:,}"
        rows.append(
            (
                f"PII key rotation on {n} subscribers (subscribers/s)",
                f"{rotation['per_second']:,.0f}",
                f"{rotation['floor']['per_second']:,.0f}",
                f"{rotation['per_second'] / rotation['floor']['per_second']:.0%}",
                "",
            )
        )
        journal = purge["floor"]["journal"]
        rows.append(
            (
                f"retention purge of {n} subscribers (subscribers/s)",
                f"{purge['per_second']:,.0f}",
                f"{journal['per_second']:,.0f}",
                f"{purge['per_second'] / journal['per_second']:.0%}",
                "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default=BASELINE, help="git ref served beside this checkout")
    parser.add_argument("--seconds", default="20", help="duration of each activation run")
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test of the benches)")
    parser.add_argument(
        "--full", action="store_true", help="also the heavy phases (1M subscribers, ledger, takeover)"
    )
    args = parser.parse_args()
    quick = ["--alloc-rounds", "5", "--search-rounds", "5", "--blocks-for-search", "20"] if args.quick else []
    full = ["--subscribers", "1000000", "--ledger", "--takeover", "--pii"] if args.full else []

    run_step("bench.run", *quick, *full)
    core = json.loads(RESULTS_PATH.read_text(encoding="utf-8"))
    ab = last_json(
        run_step(
            "bench.reservations_ab",
            "--baseline",
            args.baseline,
            *(["--requests", "200", "--rounds", "2"] if args.quick else []),
        ),
        "reservations_ab",
    )
    activations = last_json(
        run_step(
            "bench.activations",
            "--seconds",
            "5" if args.quick else args.seconds,
            *(["--rounds", "1"] if args.quick else []),
        ),
        "activations",
    )

    rows: list[tuple[str, str, str, str, str]] = []
    alloc = core["allocation"]
    rows.append(
        (
            "allocate a 10,000-number block (median ms)",
            f"{alloc['http']['median_ms']:.1f}",
            f"{alloc['raw']['median_ms']:.1f}",
            f"{alloc['ratio_of_medians']:.2f}×",
            f"≤ {alloc['goal']:.0f}×",
        )
    )
    raw_ab = next(v for v in ab if v["variant"].startswith("raw"))
    for variant in ab:
        if variant is raw_ab:
            continue
        rows.append(
            (
                f"reservations/s with key, {variant['variant']}",
                f"{variant['per_second']}",
                f"{raw_ab['per_second']}",
                f"{variant['per_second'] / raw_ab['per_second']:.0%}",
                "",
            )
        )
    raw_act = activations["raw"]["per_second"]
    for key, value in activations.items():
        if key == "raw":
            continue
        rows.append(
            (
                f"activations/s, {value.get('path', 'lean lane')}, {value['workers']} worker(s) "
                f"(p99 {value['p99_ms']:.0f} ms)",
                f"{value['per_second']}",
                f"{raw_act:.0f}",
                f"{value['per_second'] / raw_act:.0%}",
                "≥ 50%" if value.get("path") != "full stack" else "",
            )
        )
    rows += heavy_rows(core)
    worst = max(core["search"], key=lambda case: case["latency"]["p95_ms"])
    rows.append((f"slowest search p95 ({worst['case']})", f"{worst['latency']['p95_ms']:.1f} ms", "", "", ""))

    section("All benchmarks")
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    header = ("measure", "service", "raw SQL", "ratio", "goal")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, *rows):
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
