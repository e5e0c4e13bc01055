"""Takeover queries. Each ``move_*`` moves one batch of rows still owned by the exiting MVNO, so a
batch that is repeated after a crash finds nothing left to move twice (the predicate is the cursor)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

TAKEOVER_COLUMNS = (
    "id, from_mvno_id, to_mvno_id, reason, status, phase, cursor, blocks_total, blocks_moved, "
    "subscribers_total, subscribers_moved, subscribers_merged, lines_total, lines_moved, reservations_moved, "
    "batches, started_at, updated_at, completed_at, created_by_key_id"
)


async def needs(session: AsyncSession, mvno_id: str) -> list[RowMapping]:
    """The (host, province) pairs the MVNO's blocks need from whoever takes them over."""
    rows = await session.execute(
        text("SELECT DISTINCT host, province FROM blocks WHERE mvno_id = :mvno_id ORDER BY host, province"),
        {"mvno_id": mvno_id},
    )
    return [row._mapping for row in rows]


async def totals(session: AsyncSession, mvno_id: str) -> RowMapping:
    row = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM blocks WHERE mvno_id = :m) AS blocks, "
                "(SELECT count(*) FROM subscribers WHERE mvno_id = :m AND merged_into IS NULL) "
                "AS subscribers, "
                "(SELECT count(*) FROM lines WHERE mvno_id = :m) AS lines"
            ),
            {"m": mvno_id},
        )
    ).one()
    return row._mapping


async def existing_for(session: AsyncSession, from_mvno_id: str) -> str | None:
    return (
        await session.execute(text("SELECT id FROM takeovers WHERE from_mvno_id = :m"), {"m": from_mvno_id})
    ).scalar()


async def insert(session: AsyncSession, takeover: dict[str, Any]) -> None:
    columns = ", ".join(takeover)
    values = ", ".join(f":{column}" for column in takeover)
    await session.execute(text(f"INSERT INTO takeovers ({columns}) VALUES ({values})"), takeover)


async def get(session: AsyncSession, takeover_id: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(f"SELECT {TAKEOVER_COLUMNS} FROM takeovers WHERE id = :id"), {"id": takeover_id}
        )
    ).first()
    return row._mapping if row else None


async def for_mvno(session: AsyncSession, mvno_id: str, limit: int) -> list[RowMapping]:
    """Takeovers an MVNO exits by or receives, newest first. One per exiting MVNO at most, so the
    table stays as small as the registry: no index on the receiver is needed."""
    rows = await session.execute(
        text(
            f"SELECT {TAKEOVER_COLUMNS} FROM takeovers WHERE from_mvno_id = :m OR to_mvno_id = :m "
            "ORDER BY started_at DESC, id DESC LIMIT :limit"
        ),
        {"m": mvno_id, "limit": limit},
    )
    return [row._mapping for row in rows]


async def next_running(session: AsyncSession, takeover_id: str | None) -> RowMapping | None:
    """A running takeover no other worker is working on right now, locked for this batch."""
    only = " AND id = :id" if takeover_id else ""
    row = (
        await session.execute(
            text(
                f"SELECT {TAKEOVER_COLUMNS} FROM takeovers WHERE status = 'running'{only} "
                "ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            {"id": takeover_id},
        )
    ).first()
    return row._mapping if row else None


async def move_blocks(session: AsyncSession, from_id: str, to_id: str, batch: int) -> list[str]:
    """Ownership lives on the block row: 10,000 numbers change hands with one row, numbers untouched."""
    rows = await session.execute(
        text(
            "UPDATE blocks SET mvno_id = :to WHERE id IN (SELECT id FROM blocks WHERE mvno_id = :from "
            "ORDER BY prefix LIMIT :batch FOR UPDATE) RETURNING prefix"
        ),
        {"from": from_id, "to": to_id, "batch": batch},
    )
    return sorted(row.prefix for row in rows)


# One batch of subscribers with everything that hangs off them, as one statement. ``pair`` finds the
# receiver's record of the same person (same ID type and blind index); such a subscriber merges into it
# (its lines, verifications, re-verification requests and cancellations repoint there, the counters —
# the total and each cap class's — add up, verified wins), the others just change MVNO. Disputes follow
# their lines.
_MOVE_SUBSCRIBERS = text(
    """
    WITH src AS (
        SELECT id, id_type, id_blind_index, live_lines, verified_at FROM subscribers
        WHERE mvno_id = :from AND merged_into IS NULL ORDER BY id LIMIT :batch FOR UPDATE
    ), pair AS (
        SELECT src.id AS src_id, t.id AS target_id FROM src JOIN subscribers t
        ON t.mvno_id = :to AND t.id_type = src.id_type AND t.id_blind_index = src.id_blind_index
        AND t.merged_into IS NULL
    ), target AS (
        SELECT src.id AS src_id, coalesce(pair.target_id, src.id) AS target_id
        FROM src LEFT JOIN pair ON pair.src_id = src.id
    ), moved AS (
        UPDATE subscribers s SET mvno_id = :to, updated_at = :now FROM src
        WHERE s.id = src.id AND NOT EXISTS (SELECT 1 FROM pair WHERE pair.src_id = src.id) RETURNING s.id
    ), merged AS (
        UPDATE subscribers s SET merged_into = pair.target_id, live_lines = 0, updated_at = :now FROM pair
        WHERE s.id = pair.src_id RETURNING s.id
    ), merged_into AS (
        UPDATE subscribers t SET live_lines = t.live_lines + src.live_lines,
            verified_at = coalesce(t.verified_at, src.verified_at),
            real_name_status = CASE WHEN coalesce(t.verified_at, src.verified_at) IS NULL
                THEN 'unverified' ELSE 'verified' END,
            updated_at = :now
        FROM pair JOIN src ON src.id = pair.src_id WHERE t.id = pair.target_id RETURNING t.id
    ), slot_merges AS (
        INSERT INTO card_slots AS c (subscriber_id, cap_class, live_lines, updated_at)
        SELECT pair.target_id, k.cap_class, k.live_lines, :now FROM pair JOIN card_slots k
        ON k.subscriber_id = pair.src_id
        ON CONFLICT (subscriber_id, cap_class) DO UPDATE SET live_lines = c.live_lines + EXCLUDED.live_lines,
            updated_at = EXCLUDED.updated_at
        RETURNING c.subscriber_id
    ), slot_clears AS (
        DELETE FROM card_slots k USING pair WHERE k.subscriber_id = pair.src_id RETURNING k.subscriber_id
    ), line_moves AS (
        UPDATE lines l SET mvno_id = :to, subscriber_id = target.target_id FROM target
        WHERE l.subscriber_id = target.src_id RETURNING l.id
    ), verification_moves AS (
        UPDATE subscriber_verifications v SET mvno_id = :to, subscriber_id = target.target_id FROM target
        WHERE v.subscriber_id = target.src_id RETURNING v.id
    ), request_moves AS (
        UPDATE reverification_requests r SET subscriber_id = pair.target_id FROM pair
        WHERE r.subscriber_id = pair.src_id RETURNING r.id
    ), dispute_moves AS (
        UPDATE disputes d SET mvno_id = :to FROM line_moves m WHERE d.line_id = m.id RETURNING d.id
    ), cancellation_moves AS (
        UPDATE cancellations c SET mvno_id = :to, subscriber_id = target.target_id FROM target
        WHERE c.subscriber_id = target.src_id RETURNING c.id
    )
    SELECT (SELECT count(*) FROM src) AS subscribers, (SELECT count(*) FROM merged) AS merged,
        (SELECT count(*) FROM line_moves) AS lines, (SELECT max(id) FROM src) AS last_id,
        (SELECT count(*) FROM merged_into) AS merged_targets
    """
)


async def move_subscribers(
    session: AsyncSession, from_id: str, to_id: str, batch: int, now: datetime
) -> RowMapping:
    row = (
        await session.execute(_MOVE_SUBSCRIBERS, {"from": from_id, "to": to_id, "batch": batch, "now": now})
    ).one()
    return row._mapping


async def move_reservations(session: AsyncSession, from_id: str, to_id: str, batch: int) -> int:
    """Reservations move with their numbers: a live one keeps holding its number for the receiver until
    it is consumed, released or lapses."""
    rows = await session.execute(
        text(
            "UPDATE reservations SET mvno_id = :to WHERE id IN (SELECT id FROM reservations "
            "WHERE mvno_id = :from ORDER BY id LIMIT :batch FOR UPDATE) RETURNING id"
        ),
        {"from": from_id, "to": to_id, "batch": batch},
    )
    return len(rows.all())


async def move_stragglers(session: AsyncSession, from_id: str, to_id: str) -> int:
    """Rows the exiting MVNO gained while earlier batches ran (a verification recorded meanwhile, say),
    repointed through ``merged_into``; normally none."""
    moved = 0
    for statement in (
        "UPDATE lines l SET mvno_id = :to, subscriber_id = coalesce(s.merged_into, l.subscriber_id) "
        "FROM subscribers s WHERE s.id = l.subscriber_id AND l.mvno_id = :from",
        "UPDATE subscriber_verifications v SET mvno_id = :to, "
        "subscriber_id = coalesce(s.merged_into, v.subscriber_id) "
        "FROM subscribers s WHERE s.id = v.subscriber_id AND v.mvno_id = :from",
        "UPDATE disputes SET mvno_id = :to WHERE mvno_id = :from",
        "UPDATE cancellations SET mvno_id = :to WHERE mvno_id = :from",
    ):
        result: Any = await session.execute(text(statement), {"from": from_id, "to": to_id})
        moved += result.rowcount or 0
    return moved


async def advance(session: AsyncSession, takeover_id: str, now: datetime, **changes: Any) -> None:
    """Counters add (``*_moved``, ``batches``), ``phase``/``cursor``/``status``/``completed_at`` set."""
    sets = ["updated_at = :now", "batches = batches + 1"]
    params: dict[str, Any] = {"id": takeover_id, "now": now}
    for column, value in changes.items():
        sets.append(
            f"{column} = {column} + :{column}"
            if column.endswith(("_moved", "_merged"))
            else f"{column} = :{column}"
        )
        params[column] = value
    await session.execute(text(f"UPDATE takeovers SET {', '.join(sets)} WHERE id = :id"), params)


async def set_mvno_status(
    session: AsyncSession, mvno_id: str, status: str, reason: str | None, now: datetime
) -> None:
    await session.execute(
        text("UPDATE mvnos SET status = :status, status_reason = :reason, updated_at = :now WHERE id = :id"),
        {"id": mvno_id, "status": status, "reason": reason, "now": now},
    )
