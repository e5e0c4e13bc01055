"""Number rules without a database: grades, MSISDN input, patterns and the query shape they choose."""

from __future__ import annotations

import re

import pytest

from mvno_core.kernel.problems import ValidationFailed
from mvno_core.numbers import msisdn, patterns
from mvno_core.numbers.grading import Grade, grade_of
from mvno_core.numbers.repository import NumberQuery


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


@pytest.mark.parametrize("raw", ["1710005*", "17100051*", "171000512?8", "1*"])
def test_a_literal_head_is_a_primary_key_range_not_a_like(raw: str) -> None:
    """LIKE '1710005%' lets the planner pick the trigram index (46 ms median at 10M numbers); a BETWEEN
    on the primary key cannot be answered by trigrams."""
    query = NumberQuery(pattern=patterns.parse(raw))
    sql = query.statement(limit=50)
    assert "n.msisdn BETWEEN :head_low AND :head_high" in sql
    assert "n.msisdn LIKE" not in sql
    head = patterns.parse(raw).head
    assert query.params["head_low"] == head.ljust(11, "0")
    assert query.params["head_high"] == head.ljust(11, "9")


@pytest.mark.parametrize("raw", ["*520*", "*50?*", "*888*", "*0?0?*", "*205*", "*002*", "*?520*"])
def test_a_block_cover_holds_every_match_of_the_pattern(raw: str) -> None:
    """Brute force over whole blocks whose prefixes meet the pattern across the boundary (…5, …52,
    …520…): every matching number lies in a range of a triple whose prefix LIKE holds."""
    like = patterns.parse(raw).like
    cover = patterns.block_cover(like)
    assert cover is not None, raw
    for prefix in ("1650005", "1650052", "1655200", "1650000", "1605252"):
        ranges = [
            (low, high)
            for prefix_like, low, high in cover
            if re.fullmatch(prefix_like.replace("_", ".").replace("%", ".*"), prefix)
        ]
        for suffix in (f"{s:04d}" for s in range(10_000)):
            if patterns.matches(raw, prefix + suffix):
                assert any(low <= suffix <= high for low, high in ranges), (raw, prefix, suffix)


def test_a_block_cover_gives_up_where_it_would_not_save_a_walk() -> None:
    assert patterns.block_cover(patterns.parse("*66").like) is None  # 100 points a block
    assert patterns.block_cover(patterns.parse("*5?0*").like) is None  # ?5?0 anywhere in a suffix
    assert patterns.block_cover(patterns.parse("*").like) is None  # every number
    assert len(patterns.block_cover(patterns.parse("*520*").like) or []) == 15
