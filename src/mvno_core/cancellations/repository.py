"""Cancellation queries: the facts a cancellation is decided on, its rows, the month's settlement."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

CANCELLATION_COLUMNS = (
    "id, line_id, msisdn, mvno_id, subscriber_id, status, home_province, requested_province, cross_province, "
    "refund_fen, arrears_settled_fen, penalty_accepted, identity_method, completed_at, created_by_key_id"
)


async def line_facts(session: AsyncSession, line_id: str) -> RowMapping:
    """For a line the caller has locked: its home province (the number's block), the subscriber's
    real-name status, and its open dispute, if any."""
    row = (
        await session.execute(
            text(
                "SELECT b.province AS home_province, s.real_name_status, "
                "(SELECT d.id FROM disputes d WHERE d.line_id = l.id AND d.status = 'open' LIMIT 1) "
                "AS open_dispute_id FROM lines l JOIN numbers n ON n.msisdn = l.msisdn "
                "JOIN blocks b ON b.prefix = n.block_prefix JOIN subscribers s ON s.id = l.subscriber_id "
                "WHERE l.id = :line_id"
            ),
            {"line_id": line_id},
        )
    ).one()
    return row._mapping


async def settle_account(session: AsyncSession, line_id: str, now: datetime) -> None:
    """The refund is paid and the arrears settled at the counter: the account ends at zero."""
    await session.execute(
        text(
            "UPDATE lines SET balance_fen = 0, arrears_fen = 0, overdue_since = NULL, "
            "account_updated_at = :now WHERE id = :line_id"
        ),
        {"line_id": line_id, "now": now},
    )


async def insert(session: AsyncSession, cancellation: dict[str, Any]) -> None:
    await session.execute(
        text(
            f"INSERT INTO cancellations ({CANCELLATION_COLUMNS}) VALUES "
            "(:id, :line_id, :msisdn, :mvno_id, :subscriber_id, :status, :home_province, "
            ":requested_province, :cross_province, :refund_fen, :arrears_settled_fen, :penalty_accepted, "
            ":identity_method, :completed_at, :created_by_key_id)"
        ),
        cancellation,
    )


async def insert_settlement(session: AsyncSession, entry: dict[str, Any]) -> None:
    await session.execute(
        text(
            "INSERT INTO settlement_entries (id, cancellation_id, from_province, to_province, refund_fen, "
            "arrears_fen, occurred_at) VALUES (:id, :cancellation_id, :from_province, :to_province, "
            ":refund_fen, :arrears_fen, :occurred_at)"
        ),
        entry,
    )


async def get(session: AsyncSession, cancellation_id: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(f"SELECT {CANCELLATION_COLUMNS} FROM cancellations WHERE id = :id"), {"id": cancellation_id}
        )
    ).first()
    return row._mapping if row else None


async def settlement_pairs(session: AsyncSession, starts_at: datetime, ends_at: datetime) -> list[RowMapping]:
    """Sums per ordered (home → requested) pair of the entries in ``[starts_at, ends_at)``."""
    rows = await session.execute(
        text(
            "SELECT from_province, to_province, count(*) AS entries, "
            "CAST(sum(refund_fen) AS bigint) AS refund_fen, CAST(sum(arrears_fen) AS bigint) AS arrears_fen "
            "FROM settlement_entries WHERE occurred_at >= :starts_at AND occurred_at < :ends_at "
            "GROUP BY from_province, to_province ORDER BY from_province, to_province"
        ),
        {"starts_at": starts_at, "ends_at": ends_at},
    )
    return [row._mapping for row in rows]


async def ids_for_lines(session: AsyncSession, line_ids: list[str]) -> list[str]:
    if not line_ids:
        return []
    rows = await session.execute(
        text("SELECT id FROM cancellations WHERE line_id = ANY(:ids) ORDER BY id"), {"ids": line_ids}
    )
    return [str(row[0]) for row in rows]
