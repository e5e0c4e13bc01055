"""Optional phase (``--subscribers N``): 一证通查 on N subscribers, over HTTP beside the same statement
run directly in PostgreSQL, in the same run.

Set-up, in plain SQL: N subscriber rows shared by the bench and other MVNOs. The people behind them hold
valid resident IDs (address ``110105``, birth dates from 1950-01-01, sequences 000–999, the check
character from python-stdnum); their blind indexes are computed in Python with the server's own key
ring (``pii.KeyRing.blind_index``, HMAC-SHA-256) and copied in with ``COPY``; the rest of each row is
built by ``INSERT … SELECT`` from the row number — the ciphertext columns get bytes of a real
ciphertext's shape (version, key id, 12-byte nonce, 32 bytes) from ``md5`` (no pgcrypto), since the
look-up never reads them. About one person in eleven is a subscriber of both MVNOs; ``live_lines`` is
``row % 4``.

Measured, interleaved per person (the order rotating): ``POST /v1/identity-lookups`` with the operator
key (all MVNOs) and with the bench partner's key (its MVNO only), the service's own statement
(``repository.identity_lookup_statement``) timed around execute + fetch on one psycopg connection, and
``GET /v1/mvnos/{id}`` as the floor of any authenticated request on this machine. People are drawn at
random (one in ten unknown); every operator answer's ``total`` is checked against the SQL.
"""

from __future__ import annotations

import math
import random
import time
from datetime import date, timedelta
from typing import Any

import httpx
from stdnum.cn import ric

from bench import database as db
from bench.measure import collector_paused, expect
from bench.report import print_plan, section
from mvno_core.kernel.config import Settings
from mvno_core.subscribers import pii, repository

GOAL_P99_MS = 10.0
ADDRESS = "110105"
BORN_FROM = date(1950, 1, 1)
BOTH_MVNOS_EVERY = 10  # every 10th person is also a subscriber of the second MVNO


def person_id_number(person: int) -> str:
    """The ``person``-th valid resident ID: 1,000 sequences per birth day, from 1950-01-01."""
    born = BORN_FROM + timedelta(days=person // 1000)
    body = f"{ADDRESS}{born:%Y%m%d}{person % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def layout(rows: int) -> tuple[int, list[int]]:
    """(people, the person of each row): rows ``0 … people-1`` are one person each; the rest repeat
    every ``BOTH_MVNOS_EVERY``-th person at the other MVNO."""
    people = math.ceil(rows * BOTH_MVNOS_EVERY / (BOTH_MVNOS_EVERY + 1))
    persons = list(range(people)) + [i * BOTH_MVNOS_EVERY for i in range(rows - people)]
    return people, persons


# Row i: the first MVNO by parity of its person, the second (for the repeats) the opposite one.
_INSERT_SUBSCRIBERS = """
INSERT INTO subscribers (
    id, mvno_id, kind, id_type, name_ciphertext, id_number_ciphertext, id_blind_index, name_masked,
    id_number_masked, real_name_status, verified_at, live_lines, created_at, updated_at, created_by_key_id
)
SELECT 'sub_bench' || lpad(r.i::text, 10, '0'),
       CASE WHEN (r.person %% 2 = 0) = (r.i < %(people)s) THEN %(bench)s ELSE %(other)s END,
       'individual', 'resident_id',
       '\\x01026b31'::bytea || decode(md5(r.i::text) || md5('n' || r.i) || md5('m' || r.i), 'hex'),
       '\\x01026b31'::bytea || decode(md5('i' || r.i) || md5('j' || r.i) || md5('k' || r.i), 'hex'),
       r.blind_index, '张*', '110***********' || lpad((r.i %% 10000)::text, 4, '0'),
       'verified', now(), r.i %% 4, now(), now(), 'bench'
FROM bench_blind_indexes r
"""


def fill_subscribers(
    conn: db.Connection, ring: pii.KeyRing, rows: int, bench: str, other: str
) -> dict[str, Any]:
    people, persons = layout(rows)
    started = time.perf_counter()
    indexes = [ring.blind_index("resident_id", person_id_number(p)) for p in range(people)]
    compute_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE bench_blind_indexes (i integer, person integer, blind_index bytea) "
            "ON COMMIT DROP"
        )
        with conn.cursor().copy("COPY bench_blind_indexes (i, person, blind_index) FROM STDIN") as copy:
            for i, person in enumerate(persons):
                copy.write_row((i, person, indexes[person]))
        conn.execute(_INSERT_SUBSCRIBERS, {"people": people, "bench": bench, "other": other})
    insert_seconds = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute("VACUUM (ANALYZE) subscribers")
    vacuum_seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "people": people,
        "blind_index_seconds": round(compute_seconds, 2),
        "copy_insert_seconds": round(insert_seconds, 2),
        "vacuum_analyze_seconds": round(vacuum_seconds, 2),
    }


def percentile(samples_ms: list[float], share: float) -> float:
    """Nearest-rank percentile: an observed value."""
    ordered = sorted(samples_ms)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def summary(samples_seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
    }


def _line(label: str, figures: dict[str, float]) -> str:
    return (
        f"  {label:<44} p50 {figures['p50_ms']:7.2f} ms   p99 {figures['p99_ms']:7.2f} ms   "
        f"max {figures['max_ms']:7.2f}   (n={figures['n']})"
    )


def phase_identity_lookups(
    conn: db.Connection,
    client: httpx.Client,
    partner_client: httpx.Client,
    *,
    rows: int,
    rounds: int,
    bench_mvno_id: str,
    other_mvno_id: str,
) -> dict[str, Any]:
    section(f"一证通查 on {rows:,} subscribers: HTTP vs the same statement in PostgreSQL")
    ring = pii.keyring(Settings())  # the server's keys: run.py put them in MVNO_PII_KEYS for both
    fill = fill_subscribers(conn, ring, rows, bench_mvno_id, other_mvno_id)
    print(
        f"  {fill['rows']:,} rows for {fill['people']:,} people: "
        f"blind indexes {fill['blind_index_seconds']} s, "
        f"COPY + INSERT…SELECT {fill['copy_insert_seconds']} s, "
        f"VACUUM ANALYZE {fill['vacuum_analyze_seconds']} s"
    )
    rng = random.Random(20261129)
    unknown = fill["people"] + 1000
    people = [
        rng.randrange(fill["people"]) if rng.random() < 0.9 else rng.randrange(unknown, unknown + 10**5)
        for _ in range(rounds)
    ]
    numbers = [person_id_number(p) for p in people]

    statement = db.to_psycopg(repository.identity_lookup_statement(scoped=False))
    lookup_path = "/v1/identity-lookups"

    def http_lookup(http: httpx.Client, number: str) -> dict[str, Any]:
        return expect(http.post(lookup_path, json={"id_type": "resident_id", "id_number": number}), 200)

    def sql_lookup(number: str) -> list[tuple[Any, ...]]:
        params = {"bi": ring.blind_index("resident_id", number), "id_type": "resident_id"}
        return conn.execute(statement, params, prepare=True).fetchall()

    for number in numbers[:20]:  # untimed: connections, pools, prepared statements
        http_lookup(client, number)
        http_lookup(partner_client, number)
        sql_lookup(number)
    timings: dict[str, list[float]] = {"operator": [], "partner": [], "postgres": [], "floor": []}
    found = mismatches = 0

    def timed(kind: str, call: Any) -> Any:
        started = time.perf_counter()
        result = call()
        timings[kind].append(time.perf_counter() - started)
        return result

    # Interleaved, the order rotating, so that all methods meet the same cache state and machine load.
    with collector_paused():
        for i, number in enumerate(numbers):
            calls = [
                ("operator", lambda n=number: http_lookup(client, n)),
                ("partner", lambda n=number: http_lookup(partner_client, n)),
                ("postgres", lambda n=number: sql_lookup(n)),
                ("floor", lambda: expect(client.get(f"/v1/mvnos/{bench_mvno_id}"), 200)),
            ]
            results: dict[str, Any] = {}
            for kind, call in calls[i % 4 :] + calls[: i % 4]:
                results[kind] = timed(kind, call)
            found += bool(results["postgres"])
            mismatches += results["operator"]["total"] != sum(int(r[2]) for r in results["postgres"])
    operator, partner = summary(timings["operator"]), summary(timings["partner"])
    raw, floor = summary(timings["postgres"]), summary(timings["floor"])
    print(_line("HTTP POST /v1/identity-lookups, operator", operator))
    print(_line("HTTP POST /v1/identity-lookups, partner", partner))
    print(_line("PostgreSQL, the service's statement", raw))
    print(_line("HTTP GET /v1/mvnos/{id} (any authenticated read)", floor))
    print(
        f"  {found}/{len(numbers)} looked-up people found (the rest are unknown IDs); "
        f"HTTP total ≠ SQL sum: {mismatches}"
    )
    verdict = "meets" if operator["p99_ms"] <= GOAL_P99_MS else "MISSES"
    print(f"  operator HTTP p99 {operator['p99_ms']:.2f} ms: {verdict} the ≤ {GOAL_P99_MS:.0f} ms goal")
    sample = ring.blind_index("resident_id", person_id_number(0))
    plan_rows = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS) " + statement, {"bi": sample, "id_type": "resident_id"}
    ).fetchall()
    plan = "\n".join(str(r[0]) for r in plan_rows)
    print_plan("EXPLAIN (ANALYZE, BUFFERS) of the look-up (a person at both MVNOs):", plan)
    return {
        "fill": fill,
        "rounds": rounds,
        "http_operator": operator,
        "http_partner": partner,
        "postgres": raw,
        "http_authenticated_read_floor": floor,
        "total_mismatches": mismatches,
        "found": found,
        "goal_p99_ms": GOAL_P99_MS,
        "meets_goal": operator["p99_ms"] <= GOAL_P99_MS,
        "indexes": db.plan_indexes(plan),
        "plan": plan,
    }
