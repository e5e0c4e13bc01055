"""Reservation status.

``active`` → ``released`` (DELETE), ``expired`` (time), ``consumed`` (activation, later stage). An
``active`` reservation whose ``expires_at`` has passed *is* expired, whether or not the sweeper has
written that down yet; ``effective_status`` applies the numbers rule (``reservation_lapsed``) to it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from mvno_core.kernel.problems import IllegalTransition
from mvno_core.numbers.lifecycle import NumberStatus, reservation_lapsed


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"
    EXPIRED = "expired"
    CONSUMED = "consumed"


ALLOWED: dict[ReservationStatus, frozenset[ReservationStatus]] = {
    ReservationStatus.ACTIVE: frozenset(
        {ReservationStatus.RELEASED, ReservationStatus.EXPIRED, ReservationStatus.CONSUMED}
    ),
    ReservationStatus.RELEASED: frozenset(),
    ReservationStatus.EXPIRED: frozenset(),
    ReservationStatus.CONSUMED: frozenset(),
}


def can_move(current: ReservationStatus, target: ReservationStatus) -> bool:
    return target in ALLOWED[current]


def ensure_move(current: ReservationStatus, target: ReservationStatus) -> ReservationStatus:
    if not can_move(current, target):
        raise IllegalTransition(
            f"A reservation that is {current.value} cannot become {target.value}.",
            current_status=current.value,
        )
    return target


def effective_status(stored: str, expires_at: datetime, now: datetime) -> ReservationStatus:
    """An active reservation is over the instant its number's hold lapses (the numbers rule)."""
    status = ReservationStatus(stored)
    if status is ReservationStatus.ACTIVE and reservation_lapsed(NumberStatus.RESERVED, expires_at, now):
        return ReservationStatus.EXPIRED
    return status
