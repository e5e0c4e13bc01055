"""Activations over HTTP against the same full activation as one SQL statement in pgbench, in one run.

    python -m bench.activations [--seconds 20] [--concurrency 16] [--workers 1 2] [--client wrk|httpx]

Set-up (fresh database): one MVNO with numbers on segment 165 (CMCC), verified subscribers bulk-inserted
in SQL (each takes five lines, the card cap), a partner key. Every activation takes a distinct number,
subscriber slot, ICCID and IMSI, and sends an Idempotency-Key, so the service does all of it: the key's
lock and lookup, every gate, the subscriber's counters, the number's claim, the line, the audit entry,
the event and the key's record.

HTTP: wrk (a separate C process, ``apt-get install wrk``; without it an httpx async client in this
process, which costs several times more CPU per request on the shared cores) keeps ``concurrency``
requests in flight for ``--seconds`` against the server (its own process). ``--rounds`` rounds alternate
the raw limit and the lean lane with the most ``--workers`` (each run after a CHECKPOINT, the order
flipped every round), and the ratio is between their medians; then the other worker counts and the full
stack (``MVNO_LEAN_LANE=false``, one worker) run once each.

Raw SQL limit: pgbench, ``concurrency`` clients on 2 threads, for ``--seconds``, each transaction the
lane's own activation statement (``lean.decided_statement`` over the same pieces: the Idempotency-Key's
lock and lookup, every gate, the writes, the deciding final SELECT; the per-request values read from a
prepared work table by ``nextval``), in autocommit: one round trip. The audit row's content hash is a
constant there (the service computes it in Python, per request).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from stdnum import luhn

from bench import database as db
from bench.phases import create_mvno
from bench.report import section
from bench.server import running_server
from bench.stats import Latency
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.idempotency import IdempotencyClaim
from mvno_core.kernel.lean import decided_statement
from mvno_core.kernel.principal import Principal, Role
from mvno_core.kernel.statements import compose
from mvno_core.lines import profiles
from mvno_core.lines.activation import activation_pieces, hosts_of_imsi, line_read
from mvno_core.lines.repository import ACTIVATION_RESULT, LANE_TAKES_EFFECT_IF
from mvno_core.lines.schemas import LineCreate

GOAL = 0.5
SEGMENT, PROVINCE, MNC = "165", "11", "00"
CONTRACT_END = date(2030, 12, 31)  # sent with every activation, so premium numbers are fine too


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each measured run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds of the raw limit and the lane (medians)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts")
    parser.add_argument(
        "--client",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load generator: wrk (default when installed; `apt-get install wrk`) or an httpx async "
        "client in this process (costs several times wrk's CPU per request, taken from the server)",
    )
    return parser.parse_args()


def iccid(i: int) -> str:
    body = f"8986{i:014d}"
    return body + luhn.calc_check_digit(body)


def imsi(i: int) -> str:
    return f"460{MNC}{i:010d}"


_SUBSCRIBERS = """
INSERT INTO subscribers (
    id, mvno_id, kind, id_type, name_ciphertext, id_number_ciphertext, id_blind_index, name_masked,
    id_number_masked, real_name_status, verified_at, live_lines, created_at, updated_at, created_by_key_id
)
SELECT 'sub_act' || lpad(g::text, 8, '0'), %(mvno)s, 'individual', 'resident_id',
       '\\x01'::bytea, '\\x01'::bytea, decode(md5('a' || g) || md5('b' || g), 'hex'), '张*',
       '110***********' || lpad((g %% 10000)::text, 4, '0'), 'verified', now(), 0, now(), now(), 'bench'
FROM generate_series(0, %(count)s - 1) AS g
"""


def prepare(conn: db.Connection, mvno_id: str, prefixes: list[str], total: int) -> list[dict[str, Any]]:
    """``total`` work items (number, subscriber slot, ICCID, IMSI), also stored in ``bench_items``."""
    subscribers = (total + 4) // 5
    conn.execute(_SUBSCRIBERS, {"mvno": mvno_id, "count": subscribers})
    numbers = [f"{prefix}{suffix:04d}" for prefix in prefixes for suffix in range(10_000)]
    items = [
        {
            "i": i,
            "msisdn": numbers[i],
            # Consecutive items go to different people: requests in flight together never queue on one
            # subscriber's row (the card counter), which a real load would not do either.
            "subscriber_id": f"sub_act{i % subscribers:08d}",
            "iccid": iccid(i),
            "imsi": imsi(i),
        }
        for i in range(total)
    ]
    conn.execute(
        "CREATE TABLE bench_items "
        "(i bigint PRIMARY KEY, msisdn text, subscriber_id text, iccid text, imsi text)"
    )
    with conn.cursor().copy("COPY bench_items (i, msisdn, subscriber_id, iccid, imsi) FROM STDIN") as copy:
        for item in items:
            copy.write_row((item["i"], item["msisdn"], item["subscriber_id"], item["iccid"], item["imsi"]))
    conn.execute("CREATE SEQUENCE bench_seq MINVALUE 0 START 0")
    conn.execute("VACUUM ANALYZE")
    return items


# --- HTTP ------------------------------------------------------------------------------------------


async def http_run(
    base_url: str, headers: dict[str, str], items: list[dict[str, Any]], seconds: float, concurrency: int
) -> tuple[int, float, list[float], dict[str, int]]:
    latencies: list[float] = []
    failures: dict[str, int] = {}
    queue = iter(items)
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=60.0,
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:
        await asyncio.gather(*(client.get("/v1/segments") for _ in range(concurrency)))

        async def worker() -> None:
            for item in queue:
                if time.perf_counter() >= deadline:
                    return
                body = _body(item)
                started = time.perf_counter()
                response = await client.post(
                    "/v1/lines", json=body, headers={"Idempotency-Key": f"act-{item['i']}"}
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201:
                    code = str(response.json().get("code", response.status_code))
                    failures[code] = failures.get(code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies), elapsed, latencies, failures


# --- wrk -------------------------------------------------------------------------------------------

# Each wrk thread reads its own slice of pre-encoded requests (one "key<TAB>body" per line) and sends
# each once; the counts of non-201 answers come back through the threads' Lua states.
_WRK_SCRIPT = r"""
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  keys, bodies, index, failures = {}, {}, 0, 0
  for line in io.lines(os.getenv("BENCH_ITEMS") .. "." .. tid) do
    local tab = line:find("\t", 1, true)
    keys[#keys + 1] = line:sub(1, tab - 1)
    bodies[#bodies + 1] = line:sub(tab + 1)
  end
  headers = {["Content-Type"] = "application/json", ["Authorization"] = os.getenv("BENCH_AUTH")}
end
function request()
  index = index + 1
  headers["Idempotency-Key"] = keys[index]
  return wrk.format("POST", "/v1/lines", headers, bodies[index])
end
function response(status, headers, body)
  if status ~= 201 then failures = failures + 1 end
end
function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failures") end
  io.write(string.format(
    "BENCH-JSON {\"requests\": %d, \"seconds\": %.6f, \"failed\": %d, "
    .. "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"socket_errors\": %d}\n",
    summary.requests, summary.duration / 1e6, failed, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
WRK_THREADS = 2


def wrk_run(
    base_url: str, authorization: str, items: list[dict[str, Any]], seconds: float, concurrency: int
) -> dict[str, Any]:
    """Drive ``POST /v1/lines`` with wrk (its own process, C, cheap per request) for ``seconds``."""
    folder = Path(tempfile.mkdtemp(prefix="mvno-bench-wrk-"))
    try:
        script = folder / "activate.lua"
        script.write_text(_WRK_SCRIPT)
        for thread in range(WRK_THREADS):
            with (folder / f"items.{thread}").open("w") as out:
                for item in items[thread::WRK_THREADS]:
                    out.write(f"act-{item['i']}\t{json.dumps(_body(item), separators=(',', ':'))}\n")
        env = {"BENCH_ITEMS": str(folder / "items"), "BENCH_AUTH": authorization, "PATH": "/usr/bin:/bin"}
        completed = subprocess.run(
            [
                shutil.which("wrk") or "wrk",
                f"--threads={WRK_THREADS}",
                f"--connections={concurrency}",
                f"--duration={max(1, round(seconds))}s",
                "--timeout=30s",
                "--script",
                str(script),
                base_url,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    line = next(line for line in completed.stdout.splitlines() if line.startswith("BENCH-JSON "))
    figures: dict[str, Any] = json.loads(line.removeprefix("BENCH-JSON "))
    return figures


def _body(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "subscriber_id": item["subscriber_id"],
        "msisdn": item["msisdn"],
        "iccid": item["iccid"],
        "imsi": item["imsi"],
        "contract_end": CONTRACT_END.isoformat(),
    }


# --- pgbench ---------------------------------------------------------------------------------------

# Per-transaction values, read from the work item the sequence hands out.
_PER_ITEM = {
    "msisdn": "(SELECT msisdn FROM item)",
    "subscriber_id": "(SELECT subscriber_id FROM item)",
    "iccid": "(SELECT iccid FROM item)",
    "imsi": "(SELECT imsi FROM item)",
    "line_id": "('lin_raw' || (SELECT i FROM item))",
    "journal_a_id": "('aud_raw' || (SELECT i FROM item))",
    "journal_e_id": "('evt_raw' || (SELECT i FROM item))",
    "journal_subject_id": "('lin_raw' || (SELECT i FROM item))",
    "idem_key": "('raw-' || (SELECT i FROM item))",
}


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return "now()"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bytes):
        return f"'\\x{value.hex()}'::bytea"
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(v) for v in value) + "]::text[]"
    text = str(value)
    if ":" in text:
        # pgbench reads ":name" as one of its variables, even inside a string literal (JSON has many).
        encoded = base64.b64encode(text.encode()).decode()
        return f"convert_from(decode('{encoded}', 'base64'), 'UTF8')"
    return "'" + text.replace("'", "''") + "'"


def pgbench_script(mvno_id: str, key_id: str, sample: dict[str, Any], rules: profiles.ProfileRules) -> str:
    """The service's activation statement, its values per item or constant, as one pgbench command."""
    data = LineCreate(
        subscriber_id=sample["subscriber_id"],
        msisdn=sample["msisdn"],
        iccid=sample["iccid"],
        imsi=sample["imsi"],
        contract_end=CONTRACT_END,
    )
    ctx = RequestContext(
        session=None,  # type: ignore[arg-type]  # building pieces reads only the caller and the time
        principal=Principal(key_id=key_id, role=Role.PARTNER, mvno_id=mvno_id),
        request_id=None,
        now=datetime.now(UTC),
        settings=Settings(database_url="postgresql://unused"),
        idempotency=IdempotencyClaim(api_key_id=key_id, key="raw", fingerprint="f" * 64),
        method="POST",
        path="/v1/lines",
    )
    read = line_read(
        data, msisdn=sample["msisdn"], mvno_id=mvno_id, line_id="lin_raw", now=ctx.now, rules=rules
    )
    pieces, decided = decided_statement(
        activation_pieces(ctx, data, read, hosts_of_imsi(data.imsi)),
        ACTIVATION_RESULT,
        take_effect_if=LANE_TAKES_EFFECT_IF,
        claim=ctx.idempotency,
    )
    statement, params = compose(pieces, decided)
    sql = str(statement)
    # The key's lock scope, as ``idempotency.lock_scope`` makes it for the item's key.
    per_item = {**_PER_ITEM, "scope": f"('{key_id}:' || {_PER_ITEM['idem_key']})"}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        return per_item.get(name) or _literal(params[name])

    body = re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", substitute, sql)
    item = "item AS (SELECT b.* FROM (SELECT nextval('bench_seq') AS i) s JOIN bench_items b USING (i)),"
    body = body.replace("WITH ", "WITH " + item + "\n", 1)
    return " ".join(body.split()) + ";\n"


def pgbench_run(conninfo: str, script: str, seconds: float, concurrency: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="mvno-pgbench-"))
    try:
        path = folder / "activation.sql"
        path.write_text(script)
        url = make_url(conninfo)
        command = [
            shutil.which("pgbench") or "pgbench",
            "-n",
            "-c",
            str(concurrency),
            "-j",
            "2",
            "-T",
            str(int(seconds)),
            "-M",
            "prepared",
            "-f",
            str(path),
            "-r",
        ]
        env = {
            "PGHOST": str(url.query.get("host") or url.host or ""),
            "PGPORT": str(url.port or 5432),
            "PGUSER": url.username or "",
            "PGPASSWORD": url.password or "",
            "PGDATABASE": url.database or "",
        }
        result = subprocess.run(command, capture_output=True, text=True, env={**env, "PATH": "/usr/bin:/bin"})
        if result.returncode != 0:
            raise RuntimeError(f"pgbench failed: {result.stderr[-2000:]}")
        tps = float(re.search(r"tps = ([0-9.]+)", result.stdout).group(1))  # type: ignore[union-attr]
        latency = float(re.search(r"latency average = ([0-9.]+) ms", result.stdout).group(1))  # type: ignore[union-attr]
        return {"per_second": tps, "latency_avg_ms": latency}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def measure_http(
    args: argparse.Namespace, url: str, partner: dict[str, str], chunk: list[dict[str, Any]], workers: int
) -> tuple[float, float, float, dict[str, int]]:
    """One measured run against the server at ``url``: (activations/s, p50 ms, p99 ms, failures)."""
    if args.client == "wrk":
        with httpx.Client(base_url=url, headers=partner, trust_env=False) as warm:
            for _ in range(workers * 8):  # each worker caches the key before the clock starts
                warm.get("/v1/segments")
        figures = wrk_run(url, partner["Authorization"], chunk, args.seconds, args.concurrency)
        failures = {"non_201": figures["failed"]} if figures["failed"] else {}
        rate = (figures["requests"] - figures["failed"]) / figures["seconds"]
        return rate, figures["p50_ms"], figures["p99_ms"], failures
    count, elapsed, latencies, failures = asyncio.run(
        http_run(url, partner, chunk, args.seconds, args.concurrency)
    )
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
    return (count - sum(failures.values())) / elapsed, Latency.of(latencies).median_ms, p99, failures


def main() -> None:
    args = parse_args()
    section("Set-up")
    database = db.prepare_database()
    print(f"  database: {db.DATABASE_NAME} on {database.where} (fresh, migrated)")
    per_run = int(2_500 * args.seconds)  # more than the fastest run can take
    lanes = max(args.workers)
    # Rounds alternate the raw limit and the lane's best worker count (the order flips each round), each
    # run after a CHECKPOINT: on two shared cores a run's rate moves by 20-30% with what the machine and
    # the database's background work do meanwhile, so the ratio is taken between medians of runs that
    # shared those conditions. Then the other worker counts and the full stack (lane off), once each.
    rounds: list[list[tuple[str, int, bool]]] = [
        [("raw", 0, False), ("http", lanes, True)][:: 1 if r % 2 == 0 else -1] for r in range(args.rounds)
    ]
    extra = [("http", w, True) for w in args.workers if w != lanes] + [("http", 1, False)]
    # A warm-up first (not counted): the first statements on freshly loaded tables run at about half
    # speed (caches, the tables' first analyze), whichever side would run them.
    runs = [("warm", 0, False)] + [run for round_ in rounds for run in round_] + extra
    total = per_run * len(runs)
    with db.connect(database.url) as conn:
        operator = {"Authorization": f"Bearer {db.create_operator_key(conn)}"}
        with (
            running_server(database.url) as base_url,
            httpx.Client(base_url=base_url, headers=operator, timeout=300, trust_env=False) as client,
        ):
            mvno_id = create_mvno(client, "act", "Act")
        blocks = (total + 9_999) // 10_000
        prefixes = []
        for n in range(blocks):
            block = db.RawBlock(
                prefix=f"{1650000 + n}", segment=SEGMENT, host="CMCC", province=PROVINCE, mvno_id=mvno_id
            )
            db.allocate_raw(conn, block)
            prefixes.append(block.prefix)
        partner_secret = db.create_partner_key(conn, mvno_id)
        key_id = str(conn.execute("SELECT id FROM api_keys WHERE mvno_id = %s", (mvno_id,)).fetchone()[0])  # type: ignore[index]
        items = prepare(conn, mvno_id, prefixes, total)
        people = (total + 4) // 5
        print(f"  {blocks} blocks on {SEGMENT}, {len(items):,} work items, {people:,} verified subscribers")
        partner = {"Authorization": f"Bearer {partner_secret}"}
        rules = profiles.ProfileRules(
            *conn.execute(  # type: ignore[misc]
                f"SELECT {profiles.COLUMNS} FROM line_profiles WHERE profile = %s AND NOT general_data",
                (profiles.DEFAULT_PROFILE,),
            ).fetchone()
        )
        script = pgbench_script(mvno_id, key_id, items[0], rules)

        section(
            f"Activations: {args.seconds:.0f} s each, concurrency {args.concurrency}, "
            f"{args.rounds} alternating rounds"
        )
        raw_rates: list[float] = []
        http: dict[str, list[dict[str, Any]]] = {}
        for n, (kind, workers, lane) in enumerate(runs):
            db.checkpoint(conn)
            if kind in ("raw", "warm"):
                # Each run reads its own slice of the work table (the sequence starts there).
                conn.execute("SELECT setval('bench_seq', %s, false)", (n * per_run,))
                raw = pgbench_run(db.conninfo(database.url), script, args.seconds, args.concurrency)
                if kind == "warm":
                    print(f"  warm-up (pgbench, not counted):      {raw['per_second']:8.0f}/s")
                    continue
                raw_rates.append(raw["per_second"])
                print(
                    f"  pgbench, one statement:              {raw['per_second']:8.0f}/s  "
                    f"(avg {raw['latency_avg_ms']:.2f} ms)"
                )
                continue
            label = f"{'lean lane' if lane else 'full stack'}, {workers} worker(s)"
            os.environ["MVNO_LEAN_LANE"] = "true" if lane else "false"  # read by the server's Settings
            try:
                with running_server(database.url, workers=workers) as url:
                    chunk = items[n * per_run : (n + 1) * per_run]
                    rate, p50, p99, failures = measure_http(args, url, partner, chunk, workers)
            finally:
                os.environ.pop("MVNO_LEAN_LANE", None)
            http.setdefault(f"http_{workers}" + ("" if lane else "_full_stack"), []).append(
                {
                    "workers": workers,
                    "path": "lean lane" if lane else "full stack",
                    "per_second": round(rate),
                    "p50_ms": round(p50, 2),
                    "p99_ms": round(p99, 2),
                    "failures": failures,
                }
            )
            print(
                f"  HTTP ({args.client}), {label}: {rate:8.0f}/s  p50 {p50:6.2f} ms  "
                f"p99 {p99:6.2f} ms  failures {failures or 0}"
            )
        made = conn.execute("SELECT count(*) FROM lines WHERE id LIKE 'lin_raw%%'").fetchone()
        print(f"  ({made[0] if made else 0:,} lines made by pgbench)")

    raw_median = statistics.median(raw_rates)
    results: dict[str, Any] = {
        "raw": {"per_second": round(raw_median), "runs": [round(r) for r in raw_rates]}
    }
    for key, measured in http.items():
        median = statistics.median(m["per_second"] for m in measured)
        middle = min(measured, key=lambda m: abs(m["per_second"] - median))
        results[key] = {**middle, "per_second": round(median), "runs": [m["per_second"] for m in measured]}

    section("Summary")
    print(f"  {'measure':<34} {'service':>9} {'raw SQL':>9} {'ratio':>7} {'goal':>6}  runs")
    for key, value in results.items():
        if key == "raw":
            continue
        ratio = value["per_second"] / raw_median
        name = f"activations/s, {value['path']}, {value['workers']}w"
        spread = "/".join(str(r) for r in value["runs"])
        print(f"  {name:<34} {value['per_second']:9.0f} {raw_median:9.0f} {ratio:7.0%} {GOAL:6.0%}  {spread}")
    print(f"  raw SQL runs: {'/'.join(str(round(r)) for r in raw_rates)} (median {raw_median:.0f})")
    print(json.dumps({"activations": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
