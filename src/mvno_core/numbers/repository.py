"""Number queries. Reads present a reservation past ``reserved_until`` as ``available``.

Two query shapes, chosen per request by ``NumberQuery`` (``statement`` for a page, ``claim_statement``
for the one number a claim locks), both in MSISDN order:

- **Block-driven** (no pattern, a pattern whose head names blocks such as ``1700123*``, or a loose one
  such as ``*66``): walk the blocks in scope in prefix order (only those the pattern's head allows) and,
  inside each, its numbers by MSISDN range (``LATERAL … LIMIT``), stopping once the page is full. An
  MVNO's search never walks other MVNOs' numbers, and an "available" search never walks taken ones
  (``ix_numbers_claimable``). With the pattern as the only number filter, the walk is index-only and,
  where ``patterns.block_cover`` finds one, covers only the suffix ranges the pattern can match in.
- **Pattern-driven** (rare matches spread over every block: ``*8888``, ``1650*8888``, ``*5201*``; see
  ``NumberPattern.index_driven``): start from the pattern's own index (``reverse(msisdn)`` for a
  literal tail, trigrams for an inner run); the ``OFFSET 0`` fence keeps PostgreSQL from walking the
  primary key instead.

Measured on 1M numbers shared by two MVNOs, 30% of the partner's numbers in use and 2,000 reserved
(``make bench``): every search plan runs in under 3.5 ms inside PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.numbers.lifecycle import (
    CLAIMABLE_SQL,
    EFFECTIVE_STATUS_SQL,
    NumberStatus,
    in_effective_status_sql,
)
from mvno_core.numbers.patterns import NumberPattern, block_cover

# Of a claimable number: the reservation that held it until it lapsed (NULL for an available one).
LAPSED_RESERVATION_ID = "CASE WHEN n.status = 'reserved' THEN n.reservation_id END AS lapsed_reservation_id"

# Every status filter is the lifecycle's rule: a reservation past ``reserved_until`` reads as available.
# The "available" filter leads with ``n.status IN ('available', 'reserved')``, the predicate of the
# partial index ix_numbers_claimable, so claims and "available" searches walk only numbers that could be
# free, never the in-use and quarantined ones.
STATUS_FILTERS = {status.value: in_effective_status_sql(frozenset({status})) for status in NumberStatus}

COLUMNS = (
    f"n.msisdn, {EFFECTIVE_STATUS_SQL} AS status, n.grade, b.id AS block_id, b.mvno_id, b.host, "
    "b.segment, b.province, b.city, n.line_id, "
    f"CASE WHEN {EFFECTIVE_STATUS_SQL} = 'reserved' THEN n.reserved_until END AS reserved_until, "
    "n.quarantine_until, n.reissued_at"
)
SELECT_NUMBERS = f"SELECT {COLUMNS} FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix"

# The numbers of block ``b``, as a primary-key range (a block is exactly one 7-digit prefix).
IN_BLOCK = "n.msisdn BETWEEN b.prefix || '0000' AND b.prefix || '9999'"


@dataclass(slots=True)
class NumberQuery:
    """Search or claim criteria, compiled to SQL over ``n`` (numbers) and ``b`` (blocks)."""

    mvno_id: str | None = None
    status: str | None = None
    province: str | None = None
    segment: str | None = None
    grade: str | None = None
    pattern: NumberPattern | None = None
    active_blocks_only: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def pattern_driven(self) -> bool:
        return self.pattern is not None and self.pattern.index_driven

    def block_clauses(self) -> list[str]:
        clauses = []
        for column in ("mvno_id", "province", "segment"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"b.{column} = :{column}")
                self.params[column] = value
        if self.active_blocks_only:
            clauses.append("b.status = 'active'")
        if self.pattern is not None and len(self.pattern.head) >= 3:
            clauses.append("b.prefix LIKE :block_prefix_like")
            self.params["block_prefix_like"] = self.pattern.block_prefix_like
        return clauses

    def number_clauses(self) -> list[str]:
        clauses = []
        if self.status is not None:
            clauses.append(STATUS_FILTERS[self.status])
        if self.grade is not None:
            clauses.append("n.grade = :grade")
            self.params["grade"] = self.grade
        pattern = self.pattern
        if pattern is not None:
            if self.pattern_driven and pattern.reversed_like is not None:
                # The same match, reversed: a range scan of ix_numbers_msisdn_reversed. Only one form is
                # sent: given both, the planner multiplies their selectivities (~100-fold underestimate).
                clauses.append("reverse(n.msisdn) LIKE :reversed_like")
                self.params["reversed_like"] = pattern.reversed_like
            elif self.pattern_driven:
                clauses.append("n.msisdn LIKE :like")  # trigrams
                self.params["like"] = pattern.like
            elif pattern.is_prefix or len(pattern.head) >= 8:
                # A literal head is a primary-key range, said as one: given LIKE '1710005%', the planner
                # may take the trigram index instead (46 ms instead of a few at 10M numbers), and a
                # range is something trigrams cannot answer. The rest of the pattern filters the range.
                clauses.append("n.msisdn BETWEEN :head_low AND :head_high")
                self.params["head_low"] = pattern.head.ljust(11, "0")
                self.params["head_high"] = pattern.head.ljust(11, "9")
                if not pattern.is_prefix:
                    clauses.append("(n.msisdn || '') LIKE :like")
                    self.params["like"] = pattern.like
            else:
                # Block by block, the pattern is a filter on the block's range walk. "|| ''" keeps the
                # planner off the trigram index, whose bitmap would cover the whole table for each block
                # (98 ms instead of 3 ms for 1650099?888 on 1M numbers).
                clauses.append("(n.msisdn || '') LIKE :like")
                self.params["like"] = pattern.like
        return clauses

    def statement(self, *, limit: int, after_msisdn: str | None = None) -> str:
        """The SELECT of one page of numbers, strictly after ``after_msisdn``."""
        self.params["limit"] = limit
        block_clauses, number_clauses = self.block_clauses(), self.number_clauses()
        if after_msisdn is not None:
            number_clauses.append("n.msisdn > :after")
            block_clauses.append("b.prefix >= substr(:after, 1, 7)")
            self.params["after"] = after_msisdn
        outer_where = " AND ".join(block_clauses) or "TRUE"
        if self.pattern_driven:
            return (
                f"SELECT {COLUMNS} FROM (SELECT * FROM numbers n WHERE {' AND '.join(number_clauses)} "
                f"OFFSET 0) n JOIN blocks b ON b.prefix = n.block_prefix "
                f"WHERE {outer_where} ORDER BY n.msisdn LIMIT :limit"
            )
        inner_where = " AND ".join([*self._in_block(), *number_clauses])
        walk = f"SELECT n.* FROM numbers n WHERE {inner_where} ORDER BY n.msisdn LIMIT :limit"
        if self._filters_msisdn_only():
            # The pattern is the only filter and it reads nothing but msisdn: find the block's matches in
            # the primary key alone (index-only) and read only those rows. Filtered on the table, *520*
            # visited ~30,000 rows for one page of the partner's (~20 matches a block), each on another
            # heap page once numbers had been taken: 17.8 ms in PostgreSQL at 10M numbers.
            walk = (
                f"SELECT n.* FROM ({self._msisdn_matches(inner_where)}) m "
                "JOIN numbers n ON n.msisdn = m.msisdn"
            )
        # ORDER BY b.prefix first: the blocks come in that order from an index, so PostgreSQL only sorts
        # within a block and stops at the page's end (msisdn order = prefix, then msisdn).
        return (
            f"SELECT {COLUMNS} FROM blocks b CROSS JOIN LATERAL ({walk}) n "
            f"WHERE {outer_where} ORDER BY b.prefix, n.msisdn LIMIT :limit"
        )

    def _msisdn_matches(self, inner_where: str) -> str:
        """The msisdns of block ``b`` that pass ``inner_where``, in order, at most ``:limit``: from the
        pattern's cover (``patterns.block_cover``: only the suffix ranges where it can match, each a
        short index-only range scan; 15 ranges for *520* instead of 10,000 numbers), else from an
        index-only walk of the block."""
        assert self.pattern is not None
        cover = block_cover(self.pattern.like)
        if cover is None:
            return f"SELECT n.msisdn FROM numbers n WHERE {inner_where} ORDER BY n.msisdn LIMIT :limit"
        self.params["cover_prefix"] = [prefix_like for prefix_like, _, _ in cover]
        self.params["cover_low"] = [low for _, low, _ in cover]
        self.params["cover_high"] = [high for _, _, high in cover]
        # Ranges of different triples may overlap (a block ending in 520 is wholly in one): DISTINCT.
        return (
            "SELECT DISTINCT m.msisdn FROM unnest(CAST(:cover_prefix AS text[]), "
            "CAST(:cover_low AS text[]), CAST(:cover_high AS text[])) AS r(prefix_like, low, high) "
            "CROSS JOIN LATERAL (SELECT n.msisdn FROM numbers n "
            f"WHERE n.msisdn BETWEEN b.prefix || r.low AND b.prefix || r.high AND {inner_where} "
            "ORDER BY n.msisdn LIMIT :limit) m "
            "WHERE b.prefix LIKE r.prefix_like ORDER BY m.msisdn LIMIT :limit"
        )

    def _filters_msisdn_only(self) -> bool:
        """A block walk whose every number filter reads only ``msisdn`` and that has a pattern to filter
        with (a bare prefix is a range: every row it visits is returned, nothing to skip)."""
        return (
            self.status is None
            and self.grade is None
            and self.pattern is not None
            and not self.pattern.is_prefix
        )

    def claim_statement(self) -> str:
        """The SELECT that locks the one number to claim (``FOR UPDATE SKIP LOCKED``), and no other;
        it returns ``msisdn`` and ``lapsed_reservation_id`` (the reservation the claim ends, if any).

        Where the lock sits matters: a claim must never lock a row it does not return, or concurrent
        claimers skip that row and answer 409 while a number is free.
        """
        block_clauses, number_clauses = self.block_clauses(), self.number_clauses()
        outer_where = " AND ".join(block_clauses) or "TRUE"
        if self.pattern_driven:
            # Candidates come unlocked from the pattern's index (fenced subquery); only the row that
            # reaches LIMIT is locked, on the base table, where the re-check after a wait repeats
            # CLAIMABLE. Locking inside the fence would lock every match of every MVNO.
            return (
                f"SELECT n.msisdn, {LAPSED_RESERVATION_ID} "
                f"FROM (SELECT n.msisdn FROM numbers n WHERE {' AND '.join(number_clauses)} "
                "OFFSET 0) m JOIN numbers n ON n.msisdn = m.msisdn "
                "JOIN blocks b ON b.prefix = n.block_prefix "
                f"WHERE {outer_where} AND {CLAIMABLE_SQL} "
                "ORDER BY n.msisdn LIMIT 1 FOR UPDATE OF n SKIP LOCKED"
            )
        # The blocks are sorted before the lateral (a sorted subquery is not flattened), so the nested loop
        # stops at the first block that yields a number: no read-ahead into the next block's lock.
        inner_where = " AND ".join([*self._in_block(), *number_clauses])
        return (
            "SELECT n.msisdn, n.lapsed_reservation_id "
            f"FROM (SELECT b.prefix FROM blocks b WHERE {outer_where} ORDER BY b.prefix) b "
            f"CROSS JOIN LATERAL (SELECT n.msisdn, {LAPSED_RESERVATION_ID} "
            f"FROM numbers n WHERE {inner_where} "
            f"ORDER BY n.msisdn LIMIT 1 FOR UPDATE SKIP LOCKED) n ORDER BY b.prefix LIMIT 1"
        )

    def _in_block(self) -> list[str]:
        clauses = [IN_BLOCK]
        if self.status == "reserved":
            # Reservations are few and short-lived: find exactly them in ix_numbers_block_prefix_status
            # rather than walking each block's range.
            clauses.append("n.block_prefix = b.prefix")
        return clauses


async def plan_per_pattern(session: AsyncSession) -> None:
    """Keep pattern queries on custom plans for the rest of this transaction.

    psycopg prepares a statement after 5 runs, and PostgreSQL may then run it with one generic plan that
    ignores the parameters; for ``LIKE :pattern`` that plan is a full scan. Set per transaction, not per
    connection: a connection-wide setting would also re-plan the foreign-key checks of every inserted
    number (10,000 per block allocation, +50% measured).
    """
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def get(session: AsyncSession, msisdn: str, now: datetime) -> RowMapping | None:
    row = (
        await session.execute(
            text(f"{SELECT_NUMBERS} WHERE n.msisdn = :msisdn"), {"msisdn": msisdn, "now": now}
        )
    ).first()
    return row._mapping if row else None


async def search(
    session: AsyncSession, query: NumberQuery, *, now: datetime, after_msisdn: str | None, limit: int
) -> list[RowMapping]:
    statement = query.statement(limit=limit, after_msisdn=after_msisdn)
    if query.pattern is not None:
        await plan_per_pattern(session)
    rows = await session.execute(text(statement), {**query.params, "now": now})
    return [r._mapping for r in rows]


async def holder_history(session: AsyncSession, msisdn: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(
                "SELECT n.last_cancelled_at, b.mvno_id FROM numbers n "
                "JOIN blocks b ON b.prefix = n.block_prefix WHERE n.msisdn = :msisdn"
            ),
            {"msisdn": msisdn},
        )
    ).first()
    return row._mapping if row else None


async def counts_by_block(
    session: AsyncSession, prefixes: list[str], now: datetime
) -> dict[str, dict[str, int]]:
    """Live counts per block, by effective status (a lapsed reservation counts as available); an
    index-only scan of ix_numbers_block_prefix_status."""
    filters = ", ".join(
        f"count(*) FILTER (WHERE {in_effective_status_sql(frozenset({status}))}) AS {status.value}"
        for status in NumberStatus
    )
    rows = await session.execute(
        text(
            f"SELECT n.block_prefix, {filters} FROM numbers n WHERE n.block_prefix = ANY(:prefixes) "
            "GROUP BY n.block_prefix"
        ),
        {"prefixes": prefixes, "now": now},
    )
    return {
        row.block_prefix: {status.value: getattr(row, status.value) for status in NumberStatus}
        for row in rows
    }
