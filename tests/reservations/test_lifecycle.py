"""Reservation status rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mvno_core.reservations import statements
from mvno_core.reservations.lifecycle import (
    ALLOWED,
    ReservationStatus,
    can_move,
    effective_status,
    ensure_move,
)
from tests.transitions import check_move


def test_reservation_effective_status() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert effective_status("active", now + timedelta(seconds=1), now) is ReservationStatus.ACTIVE
    assert effective_status("active", now, now) is ReservationStatus.EXPIRED
    assert effective_status("released", now + timedelta(hours=1), now) is ReservationStatus.RELEASED
    assert effective_status("consumed", now - timedelta(hours=1), now) is ReservationStatus.CONSUMED


EXPECTED_MOVES = {("active", "released"), ("active", "expired"), ("active", "consumed")}


@pytest.mark.parametrize("current", list(ReservationStatus))
@pytest.mark.parametrize("target", list(ReservationStatus))
def test_reservation_transition_table(current: ReservationStatus, target: ReservationStatus) -> None:
    check_move(current, target, EXPECTED_MOVES, can_move, ensure_move)


def test_every_reservation_piece_makes_an_allowed_move() -> None:
    assert set(statements.MOVES.values()) == {(s, t) for s in ALLOWED for t in ALLOWED[s]}
