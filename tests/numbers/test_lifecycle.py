"""The number state machine: the table over every pair, and the lapsed-reservation rule in Python and in
SQL agreeing row by row (the boundary instant included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from mvno_core.numbers import statements
from mvno_core.numbers.lifecycle import (
    ALLOWED,
    CLAIMABLE_SQL,
    EFFECTIVE_STATUS_SQL,
    NumberStatus,
    can_move,
    effective_status,
    ensure_move,
    in_effective_status_sql,
    reservation_lapsed,
    sources_of,
)
from tests.transitions import check_move

EXPECTED_MOVES = {
    ("available", "reserved"),
    ("available", "in_use"),
    ("reserved", "available"),
    ("reserved", "in_use"),
    ("in_use", "quarantined"),
    ("quarantined", "available"),
    ("quarantined", "in_use"),
}


@pytest.mark.parametrize("current", list(NumberStatus))
@pytest.mark.parametrize("target", list(NumberStatus))
def test_number_transition_table(current: NumberStatus, target: NumberStatus) -> None:
    check_move(current, target, EXPECTED_MOVES, can_move, ensure_move)


def test_every_piece_makes_a_move_the_table_allows() -> None:
    assert set(statements.MOVES.values()) <= {(s, t) for s in ALLOWED for t in ALLOWED[s]}
    # Every legal move has a piece that makes it.
    assert {(s, t) for s in ALLOWED for t in ALLOWED[s]} <= set(statements.MOVES.values())


def test_sources_of() -> None:
    assert sources_of(NumberStatus.RESERVED) == {NumberStatus.AVAILABLE}
    assert sources_of(NumberStatus.QUARANTINED) == {NumberStatus.IN_USE}


NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
ROWS = [
    ("available", None),
    ("reserved", NOW + timedelta(microseconds=1)),
    ("reserved", NOW),  # the boundary: lapsed at this very instant
    ("reserved", NOW - timedelta(microseconds=1)),
    ("reserved", NOW - timedelta(days=1)),
    ("in_use", None),
    ("quarantined", None),
]


def test_lapsed_rule_in_python() -> None:
    assert not reservation_lapsed("reserved", NOW + timedelta(microseconds=1), NOW)
    assert reservation_lapsed("reserved", NOW, NOW)
    assert effective_status("reserved", NOW, NOW) is NumberStatus.AVAILABLE
    assert effective_status("reserved", NOW + timedelta(seconds=1), NOW) is NumberStatus.RESERVED
    assert not reservation_lapsed("available", NOW - timedelta(days=1), NOW)


def _sql_view(raw: psycopg.Connection, expression: str) -> list[object]:
    """Evaluate ``expression`` (SQL over a numbers row ``n`` and ``:now``) for every row of ROWS."""
    values = ", ".join(f"({i}, %(status{i})s::text, %(until{i})s::timestamptz)" for i in range(len(ROWS)))
    params: dict[str, object] = {"now": NOW}
    for i, (status, until) in enumerate(ROWS):
        params |= {f"status{i}": status, f"until{i}": until}
    query = (
        f"SELECT {expression.replace(':now', '%(now)s')} "
        f"FROM (VALUES {values}) AS n(i, status, reserved_until) ORDER BY i"
    )
    return [row[0] for row in raw.execute(query, params).fetchall()]


def test_sql_and_python_agree_on_the_effective_status(raw: psycopg.Connection) -> None:
    in_sql = _sql_view(raw, EFFECTIVE_STATUS_SQL)
    in_python = [effective_status(status, until, NOW).value for status, until in ROWS]
    assert in_sql == in_python
    assert in_sql[2] == "available"  # reserved_until == now is available in both


def test_sql_and_python_agree_on_claimable(raw: psycopg.Connection) -> None:
    in_sql = _sql_view(raw, CLAIMABLE_SQL)
    in_python = [
        effective_status(status, until, NOW) in sources_of(NumberStatus.RESERVED) for status, until in ROWS
    ]
    assert in_sql == in_python
    assert in_sql[2] is True


@pytest.mark.parametrize("status", list(NumberStatus))
def test_status_filters_agree_with_python(raw: psycopg.Connection, status: NumberStatus) -> None:
    in_sql = _sql_view(raw, in_effective_status_sql(frozenset({status})))
    assert in_sql == [effective_status(s, until, NOW) is status for s, until in ROWS]
