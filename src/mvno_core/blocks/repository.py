"""Block queries. Allocation is set-based: one INSERT … SELECT generate_series for 10,000 numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.numbers.grading import GRADE_SQL
from mvno_core.reference.data import BLOCK_SIZE, Segment

# Per-segment allocation is serialised by this advisory lock (namespace, hashtext(segment)): finding the
# lowest free H-code and inserting it must not interleave. Allocation is rare; number traffic never waits.
ALLOCATION_LOCK_NAMESPACE = 3

INSERT_NUMBERS_SQL = (
    "INSERT INTO numbers (msisdn, status, grade) "
    f"SELECT :prefix || lpad(s::text, 4, '0'), 'available', {GRADE_SQL} "
    f"FROM generate_series(0, {BLOCK_SIZE - 1}) AS s"
)

_COLUMNS = "id, prefix, segment, host, province, city, mvno_id, status, size, allocated_at"


@dataclass(slots=True)
class BlockRow:
    id: str
    prefix: str
    segment: str
    host: str
    province: str
    city: str | None
    mvno_id: str
    status: str
    size: int
    allocated_at: datetime


async def lock_segment(session: AsyncSession, segment: Segment) -> None:
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, hashtext(:segment))"),
        {"ns": ALLOCATION_LOCK_NAMESPACE, "segment": segment.code},
    )


async def lowest_free_prefix(session: AsyncSession, segment: Segment) -> str | None:
    prefix: str | None = await session.scalar(
        text(
            "SELECT p::text FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS p "
            "WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.prefix = p::text) "
            "ORDER BY p LIMIT 1"
        ),
        {"first": segment.first_prefix, "last": segment.last_prefix},
    )
    return prefix


async def insert_block(session: AsyncSession, row: BlockRow) -> bool:
    """Insert the block; False when the prefix is already taken (by a committed or concurrent insert)."""
    inserted = await session.scalar(
        text(
            f"INSERT INTO blocks ({_COLUMNS}) VALUES (:id, :prefix, :segment, :host, :province, "
            ":city, :mvno_id, :status, :size, :allocated_at) "
            "ON CONFLICT (prefix) DO NOTHING RETURNING id"
        ),
        {
            "id": row.id,
            "prefix": row.prefix,
            "segment": row.segment,
            "host": row.host,
            "province": row.province,
            "city": row.city,
            "mvno_id": row.mvno_id,
            "status": row.status,
            "size": row.size,
            "allocated_at": row.allocated_at,
        },
    )
    return inserted is not None


async def insert_numbers(session: AsyncSession, prefix: str) -> None:
    await session.execute(text(INSERT_NUMBERS_SQL), {"prefix": prefix})


async def get(session: AsyncSession, block_id: str) -> BlockRow | None:
    row = (
        await session.execute(text(f"SELECT {_COLUMNS} FROM blocks WHERE id = :id"), {"id": block_id})
    ).first()
    return BlockRow(**row._mapping) if row else None


async def list_page(
    session: AsyncSession,
    *,
    mvno_id: str | None,
    segment: str | None,
    province: str | None,
    after_prefix: str | None,
    limit: int,
) -> list[BlockRow]:
    clauses = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    for column, value in (("mvno_id", mvno_id), ("segment", segment), ("province", province)):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if after_prefix is not None:
        clauses.append("prefix > :after")
        params["after"] = after_prefix
    rows = await session.execute(
        text(f"SELECT {_COLUMNS} FROM blocks WHERE {' AND '.join(clauses)} ORDER BY prefix LIMIT :limit"),
        params,
    )
    return [BlockRow(**r._mapping) for r in rows]


async def counts(session: AsyncSession, prefixes: list[str], now: datetime) -> dict[str, dict[str, int]]:
    """Live counts per block; a reservation past its expiry counts as available."""
    rows = await session.execute(
        text(
            "SELECT block_prefix, "
            "count(*) FILTER (WHERE status = 'available' "
            "  OR (status = 'reserved' AND reserved_until <= :now)) AS available, "
            "count(*) FILTER (WHERE status = 'reserved' AND reserved_until > :now) AS reserved, "
            "count(*) FILTER (WHERE status = 'in_use') AS in_use, "
            "count(*) FILTER (WHERE status = 'quarantined') AS quarantined "
            "FROM numbers WHERE block_prefix = ANY(:prefixes) GROUP BY block_prefix"
        ),
        {"prefixes": prefixes, "now": now},
    )
    return {
        r.block_prefix: {
            "available": r.available,
            "reserved": r.reserved,
            "in_use": r.in_use,
            "quarantined": r.quarantined,
        }
        for r in rows
    }
