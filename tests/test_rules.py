"""Pure rules, tested without a database: lifecycle tables, grades, patterns, MSISDN input, cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mvno_core.mvnos.lifecycle import ALLOWED, MvnoStatus, can_move, ensure_move, ensure_takes_new_business
from mvno_core.numbers import msisdn, patterns
from mvno_core.numbers.grading import Grade, grade_of
from mvno_core.numbers.repository import NumberQuery
from mvno_core.pagination import decode_cursor, encode_cursor
from mvno_core.problems import IllegalTransition, MvnoNotActive, ValidationFailed
from mvno_core.reservations.lifecycle import ReservationStatus, effective_status

EXPECTED_MVNO_MOVES = {
    ("active", "restricted"),
    ("active", "exiting"),
    ("restricted", "active"),
    ("restricted", "exiting"),
    ("exiting", "terminated"),
}


@pytest.mark.parametrize("current", list(MvnoStatus))
@pytest.mark.parametrize("target", list(MvnoStatus))
def test_mvno_transition_table(current: MvnoStatus, target: MvnoStatus) -> None:
    legal = (current.value, target.value) in EXPECTED_MVNO_MOVES
    assert can_move(current, target) is legal
    if legal:
        assert ensure_move(current, target) is target
    else:
        with pytest.raises(IllegalTransition) as caught:
            ensure_move(current, target)
        assert caught.value.members["current_status"] == current.value


def test_terminated_is_final() -> None:
    assert ALLOWED[MvnoStatus.TERMINATED] == frozenset()


@pytest.mark.parametrize("status", list(MvnoStatus))
def test_only_active_mvno_takes_new_business(status: MvnoStatus) -> None:
    if status is MvnoStatus.ACTIVE:
        ensure_takes_new_business(status)
    else:
        with pytest.raises(MvnoNotActive):
            ensure_takes_new_business(status)


@pytest.mark.parametrize(
    ("number", "grade"),
    [
        ("17100008888", Grade.PREMIUM),  # AAAA
        ("17100001234", Grade.PREMIUM),  # ascending
        ("17100006789", Grade.PREMIUM),
        ("17100000123", Grade.PREMIUM),
        ("17100004321", Grade.PREMIUM),  # descending
        ("17100009876", Grade.PREMIUM),
        ("17100001122", Grade.PREMIUM),  # AABB
        ("17100001212", Grade.PREMIUM),  # ABAB
        ("17100000888", Grade.PREMIUM),  # ends 888
        ("17100004666", Grade.PREMIUM),  # ends 666
        ("17100003520", Grade.PREMIUM),  # ends 520
        ("17100001314", Grade.PREMIUM),  # ends 1314
        ("17100001235", Grade.STANDARD),
        ("17100008889", Grade.STANDARD),
        ("17100001243", Grade.STANDARD),
        ("17100009012", Grade.STANDARD),  # 9→0 is not a run
        ("17100001221", Grade.STANDARD),  # ABBA is not listed
        ("17100004521", Grade.STANDARD),
    ],
)
def test_grade_rules(number: str, grade: Grade) -> None:
    assert grade_of(number) is grade


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("17012345678", "17012345678"),
        ("+8617012345678", "17012345678"),
        ("8617012345678", "17012345678"),
        ("+86 170-1234-5678", "17012345678"),
        ("170 1234 5678", "17012345678"),
    ],
)
def test_msisdn_inputs_accepted(raw: str, expected: str) -> None:
    assert msisdn.normalise(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "1701234567", "170123456789", "27012345678", "1701234567x", "+1 17012345678"]
)
def test_msisdn_inputs_rejected(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        msisdn.normalise(raw)


@pytest.mark.parametrize(
    ("raw", "like", "reversed_like"),
    [
        ("*8888", "%8888", "8888%"),
        ("1700123*", "1700123%", None),
        ("*520*", "%520%", None),
        ("171000?8888", "171000_8888", "8888_000171"),
        ("1650*8888", "1650%8888", "8888%0561"),
        ("1700123?888", "1700123_888", None),
        ("**88", "%88", "88%"),
        ("?????????88", "_________88", "88_________"),
    ],
)
def test_pattern_to_like(raw: str, like: str, reversed_like: str | None) -> None:
    parsed = patterns.parse(raw)
    assert parsed.like == like
    assert parsed.reversed_like == reversed_like


@pytest.mark.parametrize("raw", ["", "abc", "8888", "1700123456789*", "1700%", "171_000", "17000008888?"])
def test_bad_patterns_rejected(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        patterns.parse(raw)


def test_pattern_oracle_semantics() -> None:
    assert patterns.matches("*8888", "17100008888")
    assert not patterns.matches("*8888", "17100088880")
    assert patterns.matches("*520*", "17105201234")
    assert patterns.matches("171000?8888", "17100058888")
    assert not patterns.matches("171000?8888", "17100108888")


def test_reservation_effective_status() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert effective_status("active", now + timedelta(seconds=1), now) is ReservationStatus.ACTIVE
    assert effective_status("active", now, now) is ReservationStatus.EXPIRED
    assert effective_status("released", now + timedelta(hours=1), now) is ReservationStatus.RELEASED
    assert effective_status("consumed", now - timedelta(hours=1), now) is ReservationStatus.CONSUMED


def test_cursor_round_trip_and_tampering() -> None:
    cursor = encode_cursor(12, 34)
    assert decode_cursor(cursor, int, int) == (12, 34)
    assert decode_cursor(None, int) is None
    for bad in ("not-base64!!", encode_cursor("x", 1), encode_cursor(1), "e30"):
        with pytest.raises(ValidationFailed):
            decode_cursor(bad, int, int)


@pytest.mark.parametrize(
    ("raw", "pattern_driven", "block_prefix_like"),
    [
        ("*8888", True, None),  # rare tail: reverse index
        ("*888", True, None),
        ("*5201*", True, None),  # rare inner run: trigrams
        ("*520*", False, None),  # ~1 in 125: found quickly block by block
        ("*66", False, None),
        ("1700123*", False, "1700123"),  # literal head: only that block
        ("165*", False, "165%"),
        ("1710000?888", False, "1710000"),
        ("17*8888", True, None),  # a 2-digit head names no block
    ],
)
def test_query_shape_follows_the_pattern(
    raw: str, pattern_driven: bool, block_prefix_like: str | None
) -> None:
    query = NumberQuery(pattern=patterns.parse(raw))
    assert query.pattern_driven is pattern_driven
    query.block_clauses()
    assert query.params.get("block_prefix_like") == block_prefix_like


def test_patterns_accept_msisdn_punctuation() -> None:
    assert patterns.parse("+86 170-0123-*").like == "1700123%"
    assert patterns.parse("*8888 ").like == "%8888"
