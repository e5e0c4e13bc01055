"""Reservation status rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mvno_core.reservations.lifecycle import ReservationStatus, effective_status


def test_reservation_effective_status() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert effective_status("active", now + timedelta(seconds=1), now) is ReservationStatus.ACTIVE
    assert effective_status("active", now, now) is ReservationStatus.EXPIRED
    assert effective_status("released", now + timedelta(hours=1), now) is ReservationStatus.RELEASED
    assert effective_status("consumed", now - timedelta(hours=1), now) is ReservationStatus.CONSUMED
