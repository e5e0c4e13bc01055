"""Every write of ``numbers``, as statement pieces (``kernel.statements.Piece``).

Only this module writes ``numbers.status``; each piece moves numbers between the statuses its name says,
and each move is checked against ``lifecycle.ALLOWED`` when the module loads (``MOVES``), so no piece
encodes a move the table does not allow. Each piece is keyed by ``msisdn`` (a claim, an activation, a
quarantine all name one number), which keeps them on one shard when numbers are distributed by ``msisdn``.

Every piece returns the numbers it moved (``msisdn``, plus what the caller needs next), so the use case
joins it to its own pieces: a reservation row, a line, the audit entry, the event.
"""

from __future__ import annotations

from datetime import datetime

from mvno_core.kernel.statements import Piece
from mvno_core.numbers.grading import GRADE_SQL
from mvno_core.numbers.lifecycle import (
    CLAIMABLE_SQL,
    LAPSED_SQL,
    NumberStatus,
    can_move,
)
from mvno_core.numbers.repository import LAPSED_RESERVATION_ID, NumberQuery
from mvno_core.reference.data import BLOCK_SIZE

AVAILABLE, RESERVED, IN_USE, QUARANTINED = (
    NumberStatus.AVAILABLE,
    NumberStatus.RESERVED,
    NumberStatus.IN_USE,
    NumberStatus.QUARANTINED,
)
# The moves the pieces below make, each checked against the table once, at import: a piece for a move
# that lifecycle.ALLOWED does not list cannot exist.
MOVES = {
    "claim": (AVAILABLE, RESERVED),
    "release_reservation": (RESERVED, AVAILABLE),
    "expire_lapsed": (RESERVED, AVAILABLE),
    "activate": (AVAILABLE, IN_USE),
    "activate_reserved": (RESERVED, IN_USE),
    "quarantine": (IN_USE, QUARANTINED),
    "reclaim": (QUARANTINED, IN_USE),
    "release_quarantined": (QUARANTINED, AVAILABLE),
    "release_reissue_batch": (QUARANTINED, AVAILABLE),
}
# ``hold_for_reissue`` changes no status (the number stays quarantined while its batch is pending), so
# it has no move to check.
for _move, (_source, _target) in MOVES.items():
    if not can_move(_source, _target):
        raise RuntimeError(f"numbers.statements.{_move}: {_source} → {_target} is not in lifecycle.ALLOWED")

_RESERVE = "status = 'reserved', reservation_id = :reservation_id, reserved_until = :reserved_until"


def _gate(gate: str | None) -> str:
    """``AND`` a CTE that must yield a row (an MVNO status check, a proof of identity) for the move."""
    return f" AND EXISTS (SELECT 1 FROM {gate})" if gate else ""


def create_block_numbers(*, name: str, prefix: str) -> Piece:
    """Insert the 10,000 numbers of a new block, ``available``, graded in SQL (``GRADE_SQL``). Returns
    nothing (10,000 returned rows would cost more than the insert's checks)."""
    return Piece(
        name,
        "INSERT INTO numbers (msisdn, status, grade) "
        f"SELECT :prefix || lpad(s::text, 4, '0'), 'available', {GRADE_SQL} "
        f"FROM generate_series(0, {BLOCK_SIZE - 1}) AS s",
        {"prefix": prefix},
    )


def claim_specific(
    *,
    name: str,
    msisdn: str,
    mvno_id: str,
    reservation_id: str,
    reserved_until: datetime,
    now: datetime,
    gate: str | None = None,
) -> list[Piece]:
    """Reserve ``msisdn`` for ``mvno_id``: one conditional UPDATE of its row.

    Claimable = effectively available, in an active block of that MVNO. Concurrent claimers queue on the
    row lock and re-check the condition (``FOR UPDATE``), so exactly one wins. ``gate`` names a CTE that
    must yield a row for the claim to run (the MVNO's status check, say). Returns ``msisdn`` and
    ``lapsed_reservation_id``.
    """
    return [
        Piece(
            f"{name}_pick",
            f"SELECT n.msisdn, {LAPSED_RESERVATION_ID} FROM numbers n "
            "JOIN blocks b ON b.prefix = n.block_prefix "
            "WHERE n.msisdn = :msisdn AND b.mvno_id = :mvno_id AND b.status = 'active' "
            f"AND {CLAIMABLE_SQL} FOR UPDATE OF n",
            {"msisdn": msisdn, "mvno_id": mvno_id, "now": now},
        ),
        Piece(
            name,
            f"UPDATE numbers n SET {_RESERVE} FROM {name}_pick p WHERE n.msisdn = p.msisdn{_gate(gate)} "
            "RETURNING n.msisdn, p.lapsed_reservation_id",
            {"reservation_id": reservation_id, "reserved_until": reserved_until},
        ),
    ]


def claim_any(
    *,
    name: str,
    query: NumberQuery,
    reservation_id: str,
    reserved_until: datetime,
    now: datetime,
    gate: str | None = None,
) -> list[Piece]:
    """Reserve the lowest claimable number matching ``query`` (``FOR UPDATE SKIP LOCKED``: concurrent
    claimers take different numbers instead of queueing on one). Returns like ``claim_specific``."""
    pick = query.claim_statement()
    return [
        Piece(f"{name}_pick", pick, {**query.params, "now": now}),
        Piece(
            name,
            f"UPDATE numbers n SET {_RESERVE} FROM {name}_pick p WHERE n.msisdn = p.msisdn{_gate(gate)} "
            "RETURNING n.msisdn, p.lapsed_reservation_id",
            {"reservation_id": reservation_id, "reserved_until": reserved_until},
        ),
    ]


def release_reservation(*, name: str, reservation_id: str, msisdn: str) -> Piece:
    """``reserved`` → ``available`` for the number this reservation still holds (none if it lapsed
    and was claimed since, which is why the reservation id is part of the condition)."""
    return Piece(
        name,
        "UPDATE numbers n SET status = 'available', reservation_id = NULL, reserved_until = NULL "
        "WHERE n.msisdn = :msisdn AND n.status = 'reserved' AND n.reservation_id = :reservation_id "
        "RETURNING n.msisdn",
        {"msisdn": msisdn, "reservation_id": reservation_id},
    )


def expire_lapsed(*, name: str, now: datetime, batch: int) -> list[Piece]:
    """Free up to ``batch`` numbers whose reservation has lapsed (the sweeper's write-down). Numbers are
    locked first (``SKIP LOCKED``: a claim working on one keeps it); returns ``msisdn`` and the
    ``reservation_id`` that lapsed, for the caller to end those reservations in the same statement."""
    return [
        Piece(
            f"{name}_due",
            "SELECT n.msisdn, n.reservation_id FROM numbers n "
            f"WHERE {LAPSED_SQL} "
            "ORDER BY n.reserved_until LIMIT :batch FOR UPDATE SKIP LOCKED",
            {"now": now, "batch": batch},
        ),
        Piece(
            name,
            "UPDATE numbers n SET status = 'available', reservation_id = NULL, reserved_until = NULL "
            f"FROM {name}_due d WHERE n.msisdn = d.msisdn RETURNING n.msisdn, d.reservation_id",
        ),
    ]


def activate(
    *,
    name: str,
    msisdn: str,
    mvno_id: str,
    line_id: str,
    now: datetime,
    hosts: frozenset[str],
    premium_allowed: bool,
    reservation_id: str | None = None,
    gate: str | None = None,
) -> list[Piece]:
    """Bind ``msisdn`` to a new line (→ ``in_use``) if it is in an active block of ``mvno_id`` whose host
    is among ``hosts`` (the IMSI's), premium only if ``premium_allowed``, and either claimable or held
    by a live reservation, necessarily this MVNO's, and ``reservation_id`` if one is given.

    Returns ``msisdn``, ``held_reservation_id`` (the live reservation the caller consumes) and
    ``lapsed_reservation_id`` (one that had lapsed, which the caller ends as expired).
    """
    held = (
        f"(n.status = 'reserved' AND NOT {LAPSED_SQL} "
        "AND n.reservation_id = coalesce(CAST(:held_id AS text), n.reservation_id))"
    )
    premium = "" if premium_allowed else " AND n.grade <> 'premium'"
    return [
        Piece(
            f"{name}_pick",
            f"SELECT n.msisdn, CASE WHEN {held} THEN n.reservation_id END AS held_reservation_id, "
            f"CASE WHEN {LAPSED_SQL} THEN n.reservation_id END AS lapsed_reservation_id "
            "FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix "
            "WHERE n.msisdn = :msisdn AND b.mvno_id = :mvno_id AND b.status = 'active' "
            f"AND b.host = ANY(:hosts){premium} AND ({CLAIMABLE_SQL} OR {held}) FOR UPDATE OF n",
            {
                "msisdn": msisdn,
                "mvno_id": mvno_id,
                "now": now,
                "held_id": reservation_id,
                "hosts": sorted(hosts),
            },
        ),
        Piece(
            name,
            "UPDATE numbers n SET status = 'in_use', line_id = :line_id, reservation_id = NULL, "
            f"reserved_until = NULL FROM {name}_pick p WHERE n.msisdn = p.msisdn{_gate(gate)} "
            "RETURNING n.msisdn, p.held_reservation_id, p.lapsed_reservation_id",
            {"line_id": line_id},
        ),
    ]


def quarantine(*, name: str, source: str, until: datetime, now: datetime) -> Piece:
    """``in_use`` → ``quarantined`` until ``until`` for the numbers of the lines in CTE ``source``
    (columns ``msisdn``, ``line_id``): the line ended. The line id stays on the number so that a
    reclaim by the same person can find who held it; ``last_cancelled_at`` feeds the recycled check."""
    return Piece(
        name,
        "UPDATE numbers n SET status = 'quarantined', quarantine_until = :quarantine_until, "
        f"last_cancelled_at = :now FROM {source} s WHERE n.msisdn = s.msisdn AND n.status = 'in_use' "
        "AND n.line_id = s.line_id RETURNING n.msisdn, n.quarantine_until",
        {"quarantine_until": until, "now": now},
    )


def reclaim(*, name: str, msisdn: str, line_id: str, now: datetime, gate: str | None = None) -> Piece:
    """``quarantined`` → ``in_use`` for a reclaim by the previous holder (the caller's gate proves it)."""
    return Piece(
        name,
        "UPDATE numbers n SET status = 'in_use', line_id = :line_id, quarantine_until = NULL "
        f"WHERE n.msisdn = :msisdn AND n.status = 'quarantined' AND n.quarantine_until > :now{_gate(gate)} "
        "RETURNING n.msisdn",
        {"msisdn": msisdn, "line_id": line_id, "now": now},
    )


def release_quarantined(*, name: str, now: datetime, batch: int) -> list[Piece]:
    """``quarantined`` → ``available`` for up to ``batch`` numbers whose quarantine has ended (the path
    with no recycling platform registered). Numbers waiting in a reissue batch are not touched: only
    their batch's release frees them. ``reissued_at`` marks the number as previously used."""
    return [
        Piece(
            f"{name}_due",
            "SELECT n.msisdn FROM numbers n WHERE n.status = 'quarantined' AND n.quarantine_until <= :now "
            "AND n.reissue_batch_id IS NULL "
            "ORDER BY n.quarantine_until LIMIT :batch FOR UPDATE SKIP LOCKED",
            {"now": now, "batch": batch},
        ),
        Piece(
            name,
            "UPDATE numbers n SET status = 'available', line_id = NULL, quarantine_until = NULL, "
            f"reissued_at = :now FROM {name}_due d WHERE n.msisdn = d.msisdn RETURNING n.msisdn",
        ),
    ]


def hold_for_reissue(*, name: str, batch_id: str, now: datetime, batch: int) -> list[Piece]:
    """Put up to ``batch`` numbers whose quarantine has ended into reissue batch ``batch_id`` (they stay
    ``quarantined``; a reclaim is already impossible once ``quarantine_until`` has passed).

    Numbers are locked ``SKIP LOCKED`` and the update changes the row, so a concurrent sweep either
    skips a number or re-checks it after this commit and sees ``reissue_batch_id`` set: no number joins
    two batches. Returns ``msisdn`` and ``last_cancelled_at``."""
    return [
        Piece(
            f"{name}_due",
            "SELECT n.msisdn FROM numbers n WHERE n.status = 'quarantined' AND n.quarantine_until <= :now "
            "AND n.reissue_batch_id IS NULL "
            "ORDER BY n.quarantine_until, n.msisdn LIMIT :batch FOR UPDATE SKIP LOCKED",
            {"now": now, "batch": batch},
        ),
        Piece(
            name,
            f"UPDATE numbers n SET reissue_batch_id = :reissue_batch_id FROM {name}_due d "
            "WHERE n.msisdn = d.msisdn AND n.reissue_batch_id IS NULL "
            "RETURNING n.msisdn, n.last_cancelled_at",
            {"reissue_batch_id": batch_id},
        ),
    ]


def release_reissue_batch(*, name: str, batch_id: str, now: datetime) -> Piece:
    """``quarantined`` → ``available`` for every number waiting in reissue batch ``batch_id`` (the
    platforms acknowledged it, or its deadline passed); ``reissued_at`` = now."""
    return Piece(
        name,
        "UPDATE numbers n SET status = 'available', line_id = NULL, quarantine_until = NULL, "
        "reissue_batch_id = NULL, reissued_at = :now "
        "WHERE n.reissue_batch_id = :reissue_batch_id AND n.status = 'quarantined' RETURNING n.msisdn",
        {"reissue_batch_id": batch_id, "now": now},
    )
