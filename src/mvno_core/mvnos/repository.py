from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.mvnos.models import Mvno


async def get(session: AsyncSession, mvno_id: str, *, lock: str | None = None) -> Mvno | None:
    """Load one MVNO, optionally locked:

    - ``"update"``: status and licence changes (waits for and blocks everything below);
    - ``"share"``: block allocation, which must not interleave with a licence change (PATCH);
    - ``"key_share"``: reservations. The lightest lock, the one the reservation's foreign key takes
      anyway; it conflicts only with ``"update"``, so a restriction waits for running reservations and
      reservations after it see ``restricted``, while reservations never wait for each other.
    """
    stmt = select(Mvno).where(Mvno.id == mvno_id)
    if lock == "update":
        stmt = stmt.with_for_update()
    elif lock == "share":
        stmt = stmt.with_for_update(read=True)
    elif lock == "key_share":
        stmt = stmt.with_for_update(read=True, key_share=True)
    return (await session.scalars(stmt.execution_options(populate_existing=True))).first()


async def list_page(
    session: AsyncSession, *, only_id: str | None, after_id: str | None, limit: int
) -> list[Mvno]:
    stmt = select(Mvno).order_by(Mvno.id).limit(limit)
    if only_id is not None:
        stmt = stmt.where(Mvno.id == only_id)
    if after_id is not None:
        stmt = stmt.where(Mvno.id > after_id)
    return list((await session.scalars(stmt)).all())


async def provinces_with_blocks(session: AsyncSession, mvno_id: str) -> set[str]:
    rows = await session.scalars(
        text("SELECT DISTINCT province FROM blocks WHERE mvno_id = :id"), {"id": mvno_id}
    )
    return set(rows.all())


async def id_by_code(session: AsyncSession, code: str) -> str | None:
    found: str | None = await session.scalar(select(Mvno.id).where(Mvno.code == code))
    return found
