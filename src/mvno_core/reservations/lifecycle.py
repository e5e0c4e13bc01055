"""Reservation status.

``active`` → ``released`` (DELETE), ``expired`` (time), ``consumed`` (activation, later stage). An
``active`` reservation whose ``expires_at`` has passed *is* expired, whether or not the sweeper has
written that down yet; ``effective_status`` is the one place that rule lives on the Python side.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


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


def effective_status(stored: str, expires_at: datetime, now: datetime) -> ReservationStatus:
    status = ReservationStatus(stored)
    if status is ReservationStatus.ACTIVE and expires_at <= now:
        return ReservationStatus.EXPIRED
    return status
