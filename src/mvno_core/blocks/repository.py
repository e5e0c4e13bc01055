"""Block queries. The block's 10,000 numbers are written by ``numbers.statements.create_block_numbers``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.reference.data import Segment

# Per-segment allocation is serialised by this advisory lock (namespace, hashtext(segment)): finding the
# lowest free H-code and inserting it must not interleave. Allocation is rare; number traffic never waits.
ALLOCATION_LOCK_NAMESPACE = 3

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
