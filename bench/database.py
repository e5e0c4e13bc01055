"""Direct PostgreSQL work for the benchmark: set-up, the raw allocation floor, bulk fill, query plans.

Everything here talks to PostgreSQL over one psycopg connection, bypassing the service, so that the
HTTP figures have a floor to be compared with. The SQL is the service's own wherever it can be.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from mvno_core.auth.keys import generate_secret, hash_secret, hint_of
from mvno_core.kernel.embedded import ensure_database, start_embedded
from mvno_core.kernel.ids import new_id
from mvno_core.numbers import patterns
from mvno_core.numbers.repository import NumberQuery  # builds the exact statement the service runs
from mvno_core.numbers.statements import create_block_numbers
from mvno_core.ops import migrate
from mvno_core.reference.data import BLOCK_SIZE, PROVINCES

DATABASE_NAME = "mvno_bench"
REVERSED_INDEX = "ix_numbers_msisdn_reversed"

Connection = psycopg.Connection[tuple[Any, ...]]

_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def to_psycopg(sql: str) -> str:
    """SQLAlchemy ``text()`` style (``:name``) to psycopg style (``%(name)s``); ``%`` is escaped."""
    return _NAMED_PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def conninfo(url: str) -> str:
    """A libpq URL for psycopg from any SQLAlchemy PostgreSQL URL (``postgresql+psycopg://`` …)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: str) -> Connection:
    """An autocommit connection: every transaction below is an explicit ``conn.transaction()``."""
    return psycopg.connect(conninfo(url), autocommit=True)


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    url: str
    where: str


def prepare_database() -> BenchDatabase:
    """A fresh, migrated ``mvno_bench`` on MVNO_DATABASE_URL's server, else on an embedded server.

    The embedded server lives in a temporary directory that is deleted at exit (the server is stopped
    first: ``atexit`` runs handlers last-registered-first).
    """
    external = os.environ.get("MVNO_DATABASE_URL")
    if external:
        parsed = make_url(external)
        admin_url = external if parsed.database != DATABASE_NAME else str(parsed.set(database="postgres"))
        where = f"MVNO_DATABASE_URL server ({parsed.host or 'local socket'})"
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="mvno-bench-"))
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
        admin_url = start_embedded(data_dir, delete_on_exit=True)
        where = f"embedded PostgreSQL in {data_dir}"
    with psycopg.connect(conninfo(admin_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
    url = ensure_database(admin_url, DATABASE_NAME)
    migrate.upgrade(url)
    return BenchDatabase(url=url, where=where)


def sibling_database(url: str, name: str) -> str:
    """A fresh, migrated database ``name`` on the server of ``url`` (dropped first if it exists), for a
    phase that must not share its tables with the others."""
    parsed = make_url(url)
    admin_url = parsed.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(conninfo(admin_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    sibling = ensure_database(admin_url, name)
    migrate.upgrade(sibling)
    return sibling


def server_facts(conn: Connection) -> dict[str, str]:
    facts: dict[str, str] = {}
    row = conn.execute("SHOW server_version").fetchone()
    facts["server_version"] = str(row[0]) if row else "?"
    for name in ("shared_buffers", "work_mem", "max_wal_size", "synchronous_commit", "jit"):
        row = conn.execute(f"SHOW {name}").fetchone()
        facts[name] = str(row[0]) if row else "?"
    return facts


def create_api_key(conn: Connection, *, role: str, mvno_id: str | None = None, name: str = "bench") -> str:
    """Insert an API key directly (no HTTP bootstrap exists); return its secret. A partner key needs
    ``mvno_id`` (the service then scopes every request to that MVNO); other roles take none."""
    secret = generate_secret()
    conn.execute(
        "INSERT INTO api_keys (id, secret_hash, hint, role, mvno_id, name, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, now())",
        (new_id("key"), hash_secret(secret), hint_of(secret), role, mvno_id, name),
    )
    return secret


def create_operator_key(conn: Connection) -> str:
    return create_api_key(conn, role="operator")


def create_partner_key(conn: Connection, mvno_id: str) -> str:
    return create_api_key(conn, role="partner", mvno_id=mvno_id, name="bench partner")


# The block row as blocks.repository.insert_block writes it, then the service's own numbers statement.
BLOCK_INSERT = (
    "INSERT INTO blocks (id, prefix, segment, host, province, city, mvno_id, status, size, allocated_at) "
    "VALUES (%(id)s, %(prefix)s, %(segment)s, %(host)s, %(province)s, NULL, %(mvno_id)s, 'active', "
    "%(size)s, now()) ON CONFLICT (prefix) DO NOTHING RETURNING id"
)
NUMBERS_INSERT = to_psycopg(create_block_numbers(name="numbers", prefix="").sql)


@dataclass(frozen=True, slots=True)
class RawBlock:
    prefix: str
    segment: str
    host: str
    province: str
    mvno_id: str


def insert_block(conn: Connection, block: RawBlock) -> None:
    """Block row + its 10,000 numbers, without committing (the caller owns the transaction)."""
    inserted = conn.execute(
        BLOCK_INSERT,
        {
            "id": new_id("blk"),
            "prefix": block.prefix,
            "segment": block.segment,
            "host": block.host,
            "province": block.province,
            "mvno_id": block.mvno_id,
            "size": BLOCK_SIZE,
        },
    ).fetchone()
    if inserted is None:
        raise RuntimeError(f"H-code {block.prefix} is already allocated")
    conn.execute(NUMBERS_INSERT, {"prefix": block.prefix})


def allocate_raw(conn: Connection, block: RawBlock) -> float:
    """One block in one committed transaction; returns its wall time in seconds (commit included)."""
    started = time.perf_counter()
    with conn.transaction():
        insert_block(conn, block)
    return time.perf_counter() - started


def fill(
    conn: Connection,
    *,
    owners: Sequence[str],
    segment: str = "165",
    host: str = "CMCC",
    per_transaction: int = 10,
) -> float:
    """Allocate ``len(owners)`` blocks of ``segment`` from its first H-code up, block ``i`` to MVNO
    ``owners[i]``, provinces in turn; returns seconds."""
    provinces = sorted(PROVINCES)
    first = int(segment) * 10 ** (7 - len(segment))
    started = time.perf_counter()
    for batch_start in range(0, len(owners), per_transaction):
        with conn.transaction():
            for i in range(batch_start, min(len(owners), batch_start + per_transaction)):
                insert_block(
                    conn,
                    RawBlock(
                        prefix=str(first + i),
                        segment=segment,
                        host=host,
                        province=provinces[i % len(provinces)],
                        mvno_id=owners[i],
                    ),
                )
    return time.perf_counter() - started


# --- a mature operator: taken numbers at the bottom of an MVNO's range ---------------------------------

# The lowest ``count`` numbers of an MVNO in a segment, by MSISDN, become in use (with a line id, as an
# activation would leave them). Numbers already reserved there (the fresh reservation phase) stay so.
MATURE_IN_USE = """
WITH lowest AS (
    SELECT n.msisdn FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix
    WHERE b.mvno_id = %(mvno_id)s AND b.segment = %(segment)s
    ORDER BY n.msisdn LIMIT %(count)s
)
UPDATE numbers n SET status = 'in_use', line_id = 'lin_bench_' || n.msisdn
FROM lowest WHERE n.msisdn = lowest.msisdn AND n.status = 'available'
"""

# The next ``count`` available numbers are actively reserved for an hour. numbers.reservation_id has no
# foreign key, so no reservation rows are needed for the number-side queries measured here.
MATURE_RESERVED = """
WITH next_free AS (
    SELECT n.msisdn FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix
    WHERE b.mvno_id = %(mvno_id)s AND b.segment = %(segment)s AND n.status = 'available'
    ORDER BY n.msisdn LIMIT %(count)s
)
UPDATE numbers n
SET status = 'reserved', reserved_until = now() + interval '1 hour', reservation_id = 'rsv_bench_' || n.msisdn
FROM next_free WHERE n.msisdn = next_free.msisdn
"""


@dataclass(frozen=True, slots=True)
class Maturing:
    in_use: int
    reserved: int
    seconds: float


def mature(conn: Connection, *, mvno_id: str, segment: str, in_use: int, reserved: int) -> Maturing:
    """Mark an MVNO's lowest ``in_use`` numbers of ``segment`` in use and the ``reserved`` next ones
    reserved, in one transaction (the caller VACUUM ANALYZEs afterwards)."""
    started = time.perf_counter()
    with conn.transaction():
        params = {"mvno_id": mvno_id, "segment": segment}
        taken = conn.execute(MATURE_IN_USE, {**params, "count": in_use}).rowcount
        held = conn.execute(MATURE_RESERVED, {**params, "count": reserved}).rowcount
    return Maturing(in_use=taken, reserved=held, seconds=time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class BlockFacts:
    prefix: str
    province: str


def first_claimable_block(conn: Connection, mvno_id: str, segment: str) -> BlockFacts | None:
    """The block of the MVNO's lowest available number in ``segment`` (after maturing: the block where
    the taken numbers end), else its lowest block there, else None."""
    row = conn.execute(
        "SELECT b.prefix, b.province FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix "
        "WHERE b.mvno_id = %(m)s AND b.segment = %(s)s AND n.status = 'available' "
        "ORDER BY n.msisdn LIMIT 1",
        {"m": mvno_id, "s": segment},
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT prefix, province FROM blocks WHERE mvno_id = %(m)s AND segment = %(s)s "
            "ORDER BY prefix LIMIT 1",
            {"m": mvno_id, "s": segment},
        ).fetchone()
    return BlockFacts(prefix=str(row[0]), province=str(row[1])) if row else None


def checkpoint(conn: Connection) -> bool:
    """Flush dirty buffers so a pending checkpoint does not land inside the measurements."""
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def vacuum_analyze(conn: Connection) -> float:
    started = time.perf_counter()
    for table in ("numbers", "blocks"):
        conn.execute(f"VACUUM (ANALYZE) {table}")
    return time.perf_counter() - started


def number_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) FROM numbers GROUP BY status ORDER BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def number_counts_by_mvno(conn: Connection) -> dict[str, dict[str, int]]:
    """``{mvno code: {status: count}}`` (stored status: a lapsed reservation still counts as reserved)."""
    rows = conn.execute(
        "SELECT m.code, n.status, count(*) FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix "
        "JOIN mvnos m ON m.id = b.mvno_id GROUP BY m.code, n.status ORDER BY m.code, n.status"
    ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for code, status, n in rows:
        counts.setdefault(str(code), {})[str(status)] = int(n)
    return counts


def numbers_index_scans(conn: Connection, *, wait_for_others: float = 10.0) -> dict[str, int]:
    """``idx_scan`` per index of ``numbers`` since the database was created.

    Other sessions (the stopped server's) publish their counters when they exit, so this waits until
    no other session is connected to the database, up to ``wait_for_others`` seconds.
    """
    deadline = time.monotonic() + wait_for_others
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
        if row is None or row[0] == 0:
            break
        time.sleep(0.1)
    rows = conn.execute(
        "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes "
        "WHERE relname = 'numbers' ORDER BY indexrelname"
    ).fetchall()
    return {str(name): int(scans) for name, scans in rows}


def plan_cost(plan: str) -> float:
    """The estimated total cost of a plan (its top node)."""
    match = re.search(r"cost=[\d.]+\.\.([\d.]+)", plan)
    return float(match.group(1)) if match else float("nan")


def search_query(params: Mapping[str, str], *, scope_mvno_id: str | None = None) -> NumberQuery:
    """The ``NumberQuery`` numbers.service.search builds for ``GET /v1/numbers?<params>``; a partner key
    narrows it to ``scope_mvno_id``."""
    return NumberQuery(
        mvno_id=scope_mvno_id or params.get("mvno_id"),
        status=params.get("status"),
        province=params.get("province"),
        segment=params.get("segment"),
        grade=params.get("grade"),
        pattern=patterns.parse(params["pattern"]) if "pattern" in params else None,
    )


def query_statement(query: NumberQuery, limit: int) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters numbers.repository.search sends for a page of ``limit`` items (it asks
    for ``limit + 1`` rows to know whether there is a next page)."""
    sql = query.statement(limit=limit + 1)
    return sql, {**query.params, "now": datetime.now(UTC)}


def search_statement(pattern: str, limit: int) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters numbers.repository.search sends for ``GET /v1/numbers?pattern=…``."""
    return query_statement(NumberQuery(pattern=patterns.parse(pattern)), limit)


def explain_query(conn: Connection, query: NumberQuery, limit: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the service's statement for ``query``, parameters bound as it binds
    them. Pattern queries run with ``plan_cache_mode = force_custom_plan`` there, as here."""
    sql, params = query_statement(query, limit)
    with conn.transaction():
        if query.pattern is not None:
            conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {to_psycopg(sql)}", params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def explain_search(conn: Connection, pattern: str, limit: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the service's search statement, parameters bound as it binds them."""
    return explain_query(conn, NumberQuery(pattern=patterns.parse(pattern)), limit)


def claim_query(mvno_id: str) -> NumberQuery:
    """The ``NumberQuery`` reservations.service.reserve builds for ``criteria {}``."""
    return NumberQuery(mvno_id=mvno_id, status="available", active_blocks_only=True)


def explain_claim_pick(conn: Connection, query: NumberQuery) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the row pick of an "any number" claim (``FOR UPDATE SKIP LOCKED``,
    one row). Rolled back: the row lock it takes is released and nothing is changed."""
    sql = query.claim_statement()
    params = {**query.params, "now": datetime.now(UTC)}
    rows: list[tuple[Any, ...]] = []
    with conn.transaction(force_rollback=True):
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {to_psycopg(sql)}", params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


_SCANNED_INDEX = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)")
_SEQ_SCAN = re.compile(r"Seq Scan on (\w+)")


def plan_indexes(plan: str) -> list[str]:
    """The indexes a plan scans, in order of first appearance."""
    return list(dict.fromkeys(_SCANNED_INDEX.findall(plan)))


def plan_seq_scans(plan: str) -> list[str]:
    """The tables a plan reads with a sequential scan."""
    return list(dict.fromkeys(_SEQ_SCAN.findall(plan)))


def explain_generic_search(conn: Connection, pattern: str, limit: int) -> str:
    """The *generic* plan (parameters unknown) of the same statement: the one PostgreSQL may switch a
    prepared statement to after five executions. EXPLAIN (GENERIC_PLAN) needs PostgreSQL 16+."""
    sql, _ = search_statement(pattern, limit)
    numbered: dict[str, int] = {}

    def placeholder(match: re.Match[str]) -> str:
        return f"${numbered.setdefault(match.group(1), len(numbered) + 1)}"

    rows = conn.execute(f"EXPLAIN (GENERIC_PLAN) {_NAMED_PARAM.sub(placeholder, sql)}").fetchall()
    return "\n".join(str(row[0]) for row in rows)
