"""Writes of ``reservations`` as statement pieces (see ``kernel.statements``)."""

from __future__ import annotations

from datetime import datetime

from mvno_core.kernel.statements import Piece
from mvno_core.reservations.lifecycle import ReservationStatus, can_move

# The moves the pieces below make, checked against lifecycle.ALLOWED when the module loads.
MOVES = {
    "end_lapsed": (ReservationStatus.ACTIVE, ReservationStatus.EXPIRED),
    "release": (ReservationStatus.ACTIVE, ReservationStatus.RELEASED),
    "consume": (ReservationStatus.ACTIVE, ReservationStatus.CONSUMED),
}
for _move, (_source, _target) in MOVES.items():
    if not can_move(_source, _target):
        raise RuntimeError(f"reservations.statements.{_move}: {_source} → {_target} is not allowed")

RESERVATION_COLUMNS = "id, msisdn, mvno_id, status, created_at, expires_at, ended_at"


def create(
    *,
    name: str,
    claimed: str,
    reservation_id: str,
    mvno_id: str,
    now: datetime,
    expires_at: datetime,
    key_id: str,
) -> Piece:
    """The reservation of the number in CTE ``claimed`` (none if the claim took nothing)."""
    return Piece(
        name,
        "INSERT INTO reservations (id, msisdn, mvno_id, status, created_at, expires_at, created_by_key_id) "
        f"SELECT :reservation_id, msisdn, :mvno_id, 'active', :now, :expires_at, :key_id FROM {claimed} "
        f"RETURNING {RESERVATION_COLUMNS}",
        {
            "reservation_id": reservation_id,
            "mvno_id": mvno_id,
            "now": now,
            "expires_at": expires_at,
            "key_id": key_id,
        },
    )


def end_lapsed(*, name: str, source: str, column: str = "lapsed_reservation_id") -> Piece:
    """Write down as ``expired`` the reservations named in ``source.column`` whose numbers a claim (or
    the sweeper) has just taken back: each ends at its own ``expires_at``, in the statement that freed
    its number, so its expiry can never be told after the number's next claim."""
    return Piece(
        name,
        f"UPDATE reservations r SET status = 'expired', ended_at = r.expires_at FROM {source} s "
        f"WHERE r.id = s.{column} AND r.status = 'active' RETURNING r.id, r.msisdn, r.mvno_id, r.expires_at",
    )


def release(*, name: str, reservation_id: str, now: datetime) -> Piece:
    return Piece(
        name,
        "UPDATE reservations SET status = 'released', ended_at = :now WHERE id = :reservation_id "
        "RETURNING id",
        {"reservation_id": reservation_id, "now": now},
    )


def consume(*, name: str, source: str, now: datetime) -> Piece:
    """The live reservations named in ``source.held_reservation_id`` (numbers an activation just took
    from them): consumed."""
    return Piece(
        name,
        f"UPDATE reservations r SET status = 'consumed', ended_at = :now FROM {source} s "
        "WHERE r.id = s.held_reservation_id AND r.status = 'active' RETURNING r.id",
        {"now": now},
    )
