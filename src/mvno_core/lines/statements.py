"""Writes of lines, holds and the subscriber's card counter, as statement pieces (``kernel.statements``)."""

from __future__ import annotations

from datetime import date, datetime

from mvno_core.kernel.statements import Piece

LINE_COLUMNS = (
    "id, msisdn, subscriber_id, mvno_id, status, iccid, imsi, plan_code, contract_end, activated_at, "
    "ended_at, end_reason, balance_fen, arrears_fen, overdue_since, account_updated_at"
)


# "This subscriber owes a re-verification past its deadline" (over subscribers ``s``): activation is
# refused until a passed verification satisfies it. Written once, for the gate and its explanation.
REVERIFICATION_OVERDUE_SQL = (
    "EXISTS (SELECT 1 FROM reverification_requests r WHERE r.subscriber_id = s.id "
    "AND r.status IN ('pending', 'overdue') AND r.deadline_at <= :now)"
)


def take_card_slot(
    *, name: str, subscriber_id: str, mvno_id: str, cap: int, now: datetime, gate: str | None = None
) -> Piece:
    """The card cap, race-free: one conditional update of the subscriber's live-lines counter. Two
    activations for one ID serialise on this row and never count lines. The subscriber must be
    verified and owe no overdue re-verification (先实名后开通). Returns ``id`` and ``live_lines``."""
    gate_sql = f" AND EXISTS (SELECT 1 FROM {gate})" if gate else ""
    return Piece(
        name,
        "UPDATE subscribers s SET live_lines = s.live_lines + 1, updated_at = :now "
        "WHERE s.id = :subscriber_id AND s.mvno_id = :mvno_id AND s.real_name_status = 'verified' "
        f"AND s.live_lines < :card_cap AND NOT {REVERIFICATION_OVERDUE_SQL}{gate_sql} "
        "RETURNING s.id, s.live_lines",
        {"subscriber_id": subscriber_id, "mvno_id": mvno_id, "card_cap": cap, "now": now},
    )


def insert_line(
    *,
    name: str,
    claimed: str,
    line_id: str,
    subscriber_id: str,
    mvno_id: str,
    iccid: str,
    imsi: str,
    plan_code: str | None,
    contract_end: date | None,
    now: datetime,
    key_id: str,
) -> Piece:
    """The line on the number in CTE ``claimed``. An ICCID or IMSI already on a live line (or a second
    live line on the number) inserts nothing (``ON CONFLICT DO NOTHING``): the caller then says which."""
    return Piece(
        name,
        "INSERT INTO lines (id, msisdn, subscriber_id, mvno_id, status, iccid, imsi, plan_code, "
        "contract_end, activated_at, created_by_key_id) "
        f"SELECT :line_id, c.msisdn, :subscriber_id, :mvno_id, 'active', :iccid, :imsi, :plan_code, "
        f"CAST(:contract_end AS date), :now, :key_id FROM {claimed} c ON CONFLICT DO NOTHING "
        f"RETURNING {LINE_COLUMNS}",
        {
            "line_id": line_id,
            "subscriber_id": subscriber_id,
            "mvno_id": mvno_id,
            "iccid": iccid,
            "imsi": imsi,
            "plan_code": plan_code,
            "contract_end": contract_end,
            "now": now,
            "key_id": key_id,
        },
    )


def end_lines(*, name: str, source: str, reason: str, now: datetime) -> list[Piece]:
    """End the live lines whose ids are in ``source.line_id``: ``cancelled`` with ``reason``, and each
    subscriber's card counter down by one. Returns ``id, msisdn, subscriber_id, mvno_id``."""
    return [
        Piece(
            name,
            "UPDATE lines l SET status = 'cancelled', ended_at = :now, end_reason = :end_reason "
            f"FROM {source} s WHERE l.id = s.line_id AND l.status <> 'cancelled' "
            "RETURNING l.id, l.id AS line_id, l.msisdn, l.subscriber_id, l.mvno_id",
            {"now": now, "end_reason": reason},
        ),
        Piece(
            f"{name}_slots",
            "UPDATE subscribers s SET live_lines = s.live_lines - e.lines, updated_at = :now "
            f"FROM (SELECT subscriber_id, count(*) AS lines FROM {name} GROUP BY subscriber_id) e "
            "WHERE s.id = e.subscriber_id RETURNING s.id",
            {"now": now},
        ),
    ]
