"""Audit trail queries (reads and the verifier's walk; writes are ``journal`` and ``sequencer``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

COLUMNS = (
    "id, recorded_at, actor_key_id, actor_role, actor_mvno_id, action, subject_kind, subject_id, "
    "mvno_id, request_id, data, content_hash, chain_pos, prev_hash, chain_hash"
)


async def list_page(
    session: AsyncSession,
    *,
    mvno_id: str | None,
    subject_kind: str | None,
    subject_id: str | None,
    after_id: str | None,
    limit: int,
    newest_first: bool = False,
) -> list[RowMapping]:
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    for column, name, value in (
        ("mvno_id", "scope", mvno_id),
        ("subject_kind", "kind", subject_kind),
        ("subject_id", "sid", subject_id),
    ):
        if value is not None:
            clauses.append(f"{column} = :{name}")
            params[name] = value
    if after_id is not None:
        clauses.append("id > :after")
        params["after"] = after_id
    where = " AND ".join(clauses) or "TRUE"
    rows = await session.execute(
        text(
            f"SELECT {COLUMNS} FROM audit_entries WHERE {where} "
            f"ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT :limit"
        ),
        params,
    )
    return [r._mapping for r in rows]


async def keep_transaction_open(session: AsyncSession) -> None:
    """Lift the idle-in-transaction timeout for this transaction (a verifier waits on other work)."""
    await session.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))


async def try_lock(session: AsyncSession, lock: tuple[int, int]) -> bool:
    """A transaction-scoped advisory lock, without waiting."""
    return bool(
        await session.scalar(text("SELECT pg_try_advisory_xact_lock(:a, :b)"), {"a": lock[0], "b": lock[1]})
    )


async def entry_at(session: AsyncSession, position: int) -> RowMapping | None:
    statement = text(f"SELECT {COLUMNS} FROM audit_entries WHERE chain_pos = :pos")
    found = (await session.execute(statement, {"pos": position})).first()
    return found._mapping if found else None


async def entries_from(session: AsyncSession, position: int, page: int) -> list[RowMapping]:
    rows = await session.execute(
        text(f"SELECT {COLUMNS} FROM audit_entries WHERE chain_pos >= :from ORDER BY chain_pos LIMIT :page"),
        {"from": position, "page": page},
    )
    return [r._mapping for r in rows]


async def pending_count(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM audit_entries WHERE chain_pos IS NULL")) or 0)


async def for_subjects(
    session: AsyncSession, *, mvno_id: str | None, subjects: list[tuple[str, str]], limit: int
) -> list[RowMapping]:
    """The newest entries about any of these subjects: one branch per subject, each walking the
    subject index backwards (a single IN list may be planned as a walk of the whole trail)."""
    if not subjects:
        return []
    params: dict[str, Any] = {"limit": limit, "scope": mvno_id}
    branches = []
    for n, (kind, ident) in enumerate(subjects):
        params[f"k{n}"], params[f"i{n}"] = kind, ident
        branches.append(
            f"(SELECT {COLUMNS} FROM audit_entries WHERE subject_kind = :k{n} AND subject_id = :i{n} "
            "AND (CAST(:scope AS text) IS NULL OR mvno_id = :scope) ORDER BY id DESC LIMIT :limit)"
        )
    rows = await session.execute(
        text(f"SELECT * FROM ({' UNION ALL '.join(branches)}) AS related ORDER BY id DESC LIMIT :limit"),
        params,
    )
    return [r._mapping for r in rows]
