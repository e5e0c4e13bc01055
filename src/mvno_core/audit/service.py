"""Reading and verifying the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.audit.hashing import GENESIS_HASH, chain_hash, content_hash
from mvno_core.kernel.context import RequestContext

_COLUMNS = (
    "id, recorded_at, actor_key_id, actor_role, actor_mvno_id, action, subject_kind, subject_id, "
    "mvno_id, request_id, data, content_hash, chain_pos, prev_hash, chain_hash"
)


async def list_entries(
    ctx: RequestContext,
    *,
    subject_kind: str | None,
    subject_id: str | None,
    after_id: str | None,
    limit: int,
) -> list[RowMapping]:
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    scope = ctx.principal.mvno_scope()
    if scope is not None:
        clauses.append("mvno_id = :scope")
        params["scope"] = scope
    if subject_kind is not None:
        clauses.append("subject_kind = :kind")
        params["kind"] = subject_kind
    if subject_id is not None:
        clauses.append("subject_id = :sid")
        params["sid"] = subject_id
    if after_id is not None:
        clauses.append("id > :after")
        params["after"] = after_id
    where = " AND ".join(clauses) or "TRUE"
    rows = await ctx.session.execute(
        text(f"SELECT {_COLUMNS} FROM audit_entries WHERE {where} ORDER BY id LIMIT :limit"), params
    )
    return [r._mapping for r in rows]


def recomputed_content_hash(row: RowMapping) -> str:
    return content_hash(
        entry_id=row["id"],
        recorded_at=row["recorded_at"],
        actor_key_id=row["actor_key_id"],
        actor_role=row["actor_role"],
        actor_mvno_id=row["actor_mvno_id"],
        action=row["action"],
        subject_kind=row["subject_kind"],
        subject_id=row["subject_id"],
        mvno_id=row["mvno_id"],
        request_id=row["request_id"],
        data=row["data"],
    )


@dataclass(slots=True)
class Verification:
    ok: bool
    checked: int
    first_broken_seq: int | None
    pending: int


async def verify(session: AsyncSession, *, page: int = 5000) -> Verification:
    """Walk the chain from the start: every row's content must hash to its ``content_hash`` and every
    link must follow from the previous one. Stops at the first broken position."""
    previous = GENESIS_HASH
    expected_pos = 1
    checked = 0
    while True:
        rows = (
            await session.execute(
                text(
                    f"SELECT {_COLUMNS} FROM audit_entries WHERE chain_pos >= :from "
                    "ORDER BY chain_pos LIMIT :page"
                ),
                {"from": expected_pos, "page": page},
            )
        ).all()
        for r in rows:
            row = r._mapping
            intact = (
                row["chain_pos"] == expected_pos
                and row["prev_hash"] == previous
                and recomputed_content_hash(row) == row["content_hash"]
                and chain_hash(previous, row["content_hash"]) == row["chain_hash"]
            )
            if not intact:
                pending = await _pending(session)
                return Verification(False, checked, expected_pos, pending)
            previous = row["chain_hash"]
            expected_pos += 1
            checked += 1
        if len(rows) < page:
            break
    return Verification(True, checked, None, await _pending(session))


async def _pending(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM audit_entries WHERE chain_pos IS NULL")) or 0)
