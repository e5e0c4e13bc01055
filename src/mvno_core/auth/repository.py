"""API key queries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import RowMapping, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.auth.models import ApiKey

# The live key with this secret hash (revoked keys do not authenticate).
PRINCIPAL_SQL = (
    "SELECT id, role, mvno_id, recycling_platform_id FROM api_keys "
    "WHERE secret_hash = :h AND revoked_at IS NULL"
)


async def principal_row(session: AsyncSession, secret_hash: str) -> RowMapping | None:
    row = (await session.execute(text(PRINCIPAL_SQL), {"h": secret_hash})).first()
    return row._mapping if row else None


async def mvno_exists(session: AsyncSession, mvno_id: str) -> bool:
    return bool(await session.scalar(text("SELECT 1 FROM mvnos WHERE id = :id"), {"id": mvno_id}))


async def mvno_id_by_id_or_code(session: AsyncSession, id_or_code: str) -> str | None:
    found = await session.scalar(text("SELECT id FROM mvnos WHERE id = :v OR code = :v"), {"v": id_or_code})
    return str(found) if found is not None else None


async def platform_is_active(session: AsyncSession, platform_id: str) -> bool | None:
    """Whether the recycling platform is active (None: no such platform). The row is share-locked, so a
    deactivation running now cannot slip between this check and the new key's insert (it revokes the
    platform's keys, and would miss one committed after it)."""
    status = await session.scalar(
        text("SELECT status FROM recycling_platforms WHERE id = :id FOR SHARE"), {"id": platform_id}
    )
    return None if status is None else status == "active"


async def revoke_platform_keys(session: AsyncSession, platform_id: str, now: datetime) -> list[RowMapping]:
    """Revoke every live key of a recycling platform; the keys revoked (``id``)."""
    rows = await session.execute(
        text(
            "UPDATE api_keys SET revoked_at = :now WHERE recycling_platform_id = :platform_id "
            "AND revoked_at IS NULL RETURNING id"
        ),
        {"now": now, "platform_id": platform_id},
    )
    return [row._mapping for row in rows]


async def insert(session: AsyncSession, key: ApiKey) -> None:
    session.add(key)
    await session.flush()


async def list_page(session: AsyncSession, *, after_id: str | None, limit: int | None) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.id)
    if after_id is not None:
        stmt = stmt.where(ApiKey.id > after_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.scalars(stmt)).all())


async def get(session: AsyncSession, key_id: str, *, lock: bool = False) -> ApiKey | None:
    return await session.get(ApiKey, key_id, with_for_update=lock or None)


async def mark_revoked(session: AsyncSession, key: ApiKey, now: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(revoked_at=now))
    key.revoked_at = now
