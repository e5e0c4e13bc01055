"""Line queries: the activation statement's answer, reads, holds, and the failure-path diagnostics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.lean import LeanCall
from mvno_core.kernel.statements import Piece, run
from mvno_core.lines.statements import LINE_COLUMNS, REVERIFICATION_OVERDUE_SQL

# What the activation statement answers: the line (or NULL), how far the gates let it get, and the
# lapsed reservation it ended, if any.
ACTIVATION_RESULT = (
    "SELECT l.id AS line_id, (SELECT count(*) FROM mvno) AS mvno_ok, "
    "(SELECT count(*) FROM profile) AS profile_ok, "
    "(SELECT count(*) FROM slot) AS slot_ok, (SELECT count(*) FROM claimed) AS number_ok, "
    "x.id AS lapsed_id, x.mvno_id AS lapsed_mvno_id, x.expires_at AS lapsed_expires_at "
    "FROM (SELECT 1) AS one LEFT JOIN line l ON TRUE LEFT JOIN lapsed x ON TRUE"
)

HOLD_COLUMNS = (
    "id, line_id, msisdn, reason, note, placed_at, placed_by_key_id, placed_by_role, lifted_at, "
    "lifted_by_key_id, lifted_by_role, lift_note"
)


async def activate(session: AsyncSession, pieces: list[Piece]) -> RowMapping:
    row = await run(session, pieces, ACTIVATION_RESULT)
    assert row is not None  # the final SELECT always yields one row
    return row


# The lane's activation takes effect only if it made the line and ended no lapsed reservation (whose
# expiry the full stack journals first).
LANE_TAKES_EFFECT_IF = "result.line_id IS NOT NULL AND result.lapsed_id IS NULL"


async def activate_in_lane(call: LeanCall, pieces: list[Piece]) -> dict[str, Any]:
    """The same statement over the lean lane's connection (the Idempotency-Key check joined), taking
    effect only if it made the line and ended no lapsed reservation (whose expiry the full stack
    journals first)."""
    return await call.run(pieces, ACTIVATION_RESULT, take_effect_if=LANE_TAKES_EFFECT_IF)


async def subscriber_facts(session: AsyncSession, subscriber_id: str, now: datetime) -> RowMapping | None:
    row = (
        await session.execute(
            text(
                "SELECT s.id, s.mvno_id, s.kind, s.real_name_status, s.live_lines, "
                f"{REVERIFICATION_OVERDUE_SQL} AS reverification_overdue FROM subscribers s WHERE s.id = :id"
            ),
            {"id": subscriber_id, "now": now},
        )
    ).first()
    return row._mapping if row else None


async def card_slot_count(session: AsyncSession, subscriber_id: str, cap_class: str) -> int:
    """Live lines of this subscriber in one cap class (the failure path's ``current``)."""
    count = (
        await session.execute(
            text("SELECT live_lines FROM card_slots WHERE subscriber_id = :id AND cap_class = :cap_class"),
            {"id": subscriber_id, "cap_class": cap_class},
        )
    ).scalar_one_or_none()
    return int(count or 0)


async def live_line_holding(
    session: AsyncSession, *, iccid: str, imsi: str, msisdn: str, imei: str | None = None
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                "SELECT id, CASE WHEN iccid = :iccid THEN 'ICCID' WHEN imsi = :imsi THEN 'IMSI' "
                "WHEN imei = :imei THEN 'IMEI' ELSE 'number' END AS clash FROM lines "
                "WHERE status <> 'cancelled' "
                "AND (iccid = :iccid OR imsi = :imsi OR msisdn = :msisdn OR imei = :imei) LIMIT 1"
            ),
            {"iccid": iccid, "imsi": imsi, "msisdn": msisdn, "imei": imei},
        )
    ).first()
    return dict(row._mapping) if row else None


async def get(session: AsyncSession, line_id: str, *, lock: bool = False) -> RowMapping | None:
    locking = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT {LINE_COLUMNS} FROM lines WHERE id = :id{locking}"), {"id": line_id}
        )
    ).first()
    return row._mapping if row else None


async def open_hold_reasons(session: AsyncSession, line_ids: list[str]) -> dict[str, list[str]]:
    rows = await session.execute(
        text("SELECT line_id, reason FROM line_holds WHERE line_id = ANY(:ids) AND lifted_at IS NULL"),
        {"ids": line_ids},
    )
    reasons: dict[str, list[str]] = {line_id: [] for line_id in line_ids}
    for row in rows:
        reasons[row.line_id].append(row.reason)
    return reasons


async def list_page(
    session: AsyncSession,
    *,
    mvno_id: str | None,
    status: str | None,
    subscriber_id: str | None,
    msisdn: str | None,
    after_id: str | None,
    limit: int,
) -> list[RowMapping]:
    clauses = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    for column, value in (
        ("mvno_id", mvno_id),
        ("status", status),
        ("subscriber_id", subscriber_id),
        ("msisdn", msisdn),
    ):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if after_id is not None:
        clauses.append("id > :after")
        params["after"] = after_id
    rows = await session.execute(
        text(f"SELECT {LINE_COLUMNS} FROM lines WHERE {' AND '.join(clauses)} ORDER BY id LIMIT :limit"),
        params,
    )
    return [row._mapping for row in rows]


async def holds_of(session: AsyncSession, line_id: str) -> list[RowMapping]:
    rows = await session.execute(
        text(f"SELECT {HOLD_COLUMNS} FROM line_holds WHERE line_id = :id ORDER BY placed_at, id"),
        {"id": line_id},
    )
    return [row._mapping for row in rows]


async def get_hold(session: AsyncSession, line_id: str, hold_id: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(f"SELECT {HOLD_COLUMNS} FROM line_holds WHERE id = :id AND line_id = :line_id FOR UPDATE"),
            {"id": hold_id, "line_id": line_id},
        )
    ).first()
    return row._mapping if row else None


async def open_hold(session: AsyncSession, line_id: str, reason: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(
                f"SELECT {HOLD_COLUMNS} FROM line_holds WHERE line_id = :id AND reason = :reason "
                "AND lifted_at IS NULL"
            ),
            {"id": line_id, "reason": reason},
        )
    ).first()
    return row._mapping if row else None


async def insert_hold(session: AsyncSession, hold: dict[str, Any]) -> None:
    await session.execute(
        text(
            "INSERT INTO line_holds (id, line_id, msisdn, reason, note, placed_at, placed_by_key_id, "
            "placed_by_role) VALUES (:id, :line_id, :msisdn, :reason, :note, :placed_at, "
            ":placed_by_key_id, :placed_by_role)"
        ),
        hold,
    )


async def mark_lifted(session: AsyncSession, hold: dict[str, Any]) -> None:
    await session.execute(
        text(
            "UPDATE line_holds SET lifted_at = :lifted_at, lifted_by_key_id = :lifted_by_key_id, "
            "lifted_by_role = :lifted_by_role, lift_note = :lift_note WHERE id = :id AND lifted_at IS NULL"
        ),
        hold,
    )


async def settle_status(session: AsyncSession, line_id: str) -> tuple[str | None, list[str]]:
    """Write the status the open holds imply (suspended while any is open); returns the new status if
    it changed (else None) and the open reasons."""
    row = (
        await session.execute(
            text(
                "WITH open AS (SELECT array_agg(reason ORDER BY reason) AS reasons FROM line_holds "
                "WHERE line_id = :id AND lifted_at IS NULL), "
                "target AS (SELECT CASE WHEN reasons IS NULL THEN 'active' ELSE 'suspended' END AS status "
                "FROM open), "
                "moved AS (UPDATE lines l SET status = t.status FROM target t WHERE l.id = :id "
                "AND l.status <> 'cancelled' AND l.status <> t.status RETURNING l.status) "
                "SELECT (SELECT status FROM moved) AS moved_to, (SELECT reasons FROM open) AS reasons"
            ),
            {"id": line_id},
        )
    ).one()
    return row.moved_to, list(row.reasons or [])


async def update_account(
    session: AsyncSession,
    line_id: str,
    *,
    balance_fen: int,
    arrears_fen: int,
    overdue_since: date | None,
    now: datetime,
) -> None:
    await session.execute(
        text(
            "UPDATE lines SET balance_fen = :balance, arrears_fen = :arrears, overdue_since = :overdue, "
            "account_updated_at = :now WHERE id = :id"
        ),
        {"id": line_id, "balance": balance_fen, "arrears": arrears_fen, "overdue": overdue_since, "now": now},
    )


async def insert_reverification(session: AsyncSession, request: dict[str, Any]) -> None:
    await session.execute(
        text(
            "INSERT INTO reverification_requests (id, line_id, msisdn, subscriber_id, reason, status, "
            "created_at, deadline_at) VALUES (:id, :line_id, :msisdn, :subscriber_id, :reason, :status, "
            ":created_at, :deadline_at)"
        ),
        request,
    )


async def satisfy_reverifications(
    session: AsyncSession, subscriber_id: str, now: datetime
) -> list[RowMapping]:
    """Pending and overdue requests of this subscriber become satisfied; returns them."""
    rows = await session.execute(
        text(
            "UPDATE reverification_requests r SET status = 'satisfied', resolved_at = :now FROM lines l "
            "WHERE r.subscriber_id = :id AND r.status IN ('pending', 'overdue') AND l.id = r.line_id "
            "RETURNING r.id, r.line_id, l.mvno_id"
        ),
        {"id": subscriber_id, "now": now},
    )
    return [row._mapping for row in rows]


DISPUTE_COLUMNS = (
    "id, line_id, msisdn, mvno_id, note, status, hold_id, opened_at, opened_by_key_id, resolved_at, "
    "resolved_by_key_id"
)


async def open_dispute_of(session: AsyncSession, line_id: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(f"SELECT {DISPUTE_COLUMNS} FROM disputes WHERE line_id = :id AND status = 'open'"),
            {"id": line_id},
        )
    ).first()
    return row._mapping if row else None


async def insert_dispute(session: AsyncSession, dispute: dict[str, Any]) -> None:
    await session.execute(
        text(
            "INSERT INTO disputes (id, line_id, msisdn, mvno_id, note, status, hold_id, opened_at, "
            "opened_by_key_id) VALUES (:id, :line_id, :msisdn, :mvno_id, :note, :status, :hold_id, "
            ":opened_at, :opened_by_key_id)"
        ),
        dispute,
    )


async def get_dispute(session: AsyncSession, dispute_id: str) -> RowMapping | None:
    row = (
        await session.execute(
            text(f"SELECT {DISPUTE_COLUMNS} FROM disputes WHERE id = :id"), {"id": dispute_id}
        )
    ).first()
    return row._mapping if row else None


async def resolve_dispute(
    session: AsyncSession, dispute_id: str, outcome: str, now: datetime, key_id: str
) -> None:
    await session.execute(
        text(
            "UPDATE disputes SET status = :outcome, resolved_at = :now, resolved_by_key_id = :key "
            "WHERE id = :id AND status = 'open'"
        ),
        {"id": dispute_id, "outcome": outcome, "now": now, "key": key_id},
    )


async def due_reverifications(session: AsyncSession, now: datetime, batch: int) -> list[RowMapping]:
    """Pending requests past their deadline, marked ``overdue`` (locked rows only: SKIP LOCKED)."""
    rows = await session.execute(
        text(
            "WITH due AS (SELECT id FROM reverification_requests WHERE status = 'pending' "
            "AND deadline_at <= :now ORDER BY deadline_at LIMIT :batch FOR UPDATE SKIP LOCKED) "
            "UPDATE reverification_requests r SET status = 'overdue' FROM due WHERE r.id = due.id "
            "RETURNING r.id, r.line_id"
        ),
        {"now": now, "batch": batch},
    )
    return [row._mapping for row in rows]


async def lines_due_arrears_hold(
    session: AsyncSession, overdue_on_or_before: date, batch: int
) -> list[RowMapping]:
    rows = await session.execute(
        text(
            f"SELECT {LINE_COLUMNS} FROM lines l WHERE l.arrears_fen > 0 AND l.overdue_since <= :cutoff "
            "AND l.status <> 'cancelled' AND NOT EXISTS (SELECT 1 FROM line_holds h WHERE h.line_id = l.id "
            "AND h.reason = 'arrears' AND h.lifted_at IS NULL) ORDER BY l.overdue_since "
            "LIMIT :batch FOR UPDATE SKIP LOCKED"
        ),
        {"cutoff": overdue_on_or_before, "batch": batch},
    )
    return [row._mapping for row in rows]


async def lines_due_arrears_termination(
    session: AsyncSession, placed_before: datetime, batch: int
) -> list[RowMapping]:
    rows = await session.execute(
        text(
            f"SELECT {', '.join('l.' + c for c in LINE_COLUMNS.split(', '))} FROM lines l "
            "JOIN line_holds h ON h.line_id = l.id AND h.reason = 'arrears' AND h.lifted_at IS NULL "
            "WHERE h.placed_at <= :before AND l.status <> 'cancelled' ORDER BY h.placed_at "
            "LIMIT :batch FOR UPDATE OF l SKIP LOCKED"
        ),
        {"before": placed_before, "batch": batch},
    )
    return [row._mapping for row in rows]


async def count_by_status(session: AsyncSession, mvno_id: str) -> dict[str, int]:
    """Lines of one MVNO per status (the console's MVNO page)."""
    rows = await session.execute(
        text("SELECT status, count(*) AS n FROM lines WHERE mvno_id = :mvno GROUP BY status"),
        {"mvno": mvno_id},
    )
    return {row.status: row.n for row in rows}


async def dispute_ids_of(session: AsyncSession, line_ids: list[str]) -> list[str]:
    if not line_ids:
        return []
    rows = await session.execute(
        text("SELECT id FROM disputes WHERE line_id = ANY(:ids) ORDER BY id"), {"ids": line_ids}
    )
    return [str(row[0]) for row in rows]
