"""Number search patterns: ``?`` is one digit, ``*`` any run of digits, matched against all 11 digits.

A pattern becomes a SQL ``LIKE`` (``?``→``_``, ``*``→``%``). Three indexes serve it: the primary key
(``C`` collation) for a literal head (``1700123*``), an index on ``reverse(msisdn)`` for a literal tail
(``*8888``: the reversed pattern has a literal head), and a trigram index for an inner run (``*520*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mvno_core.problems import ValidationFailed

_PATTERN = re.compile(r"^[0-9?*]{1,32}$")


@dataclass(frozen=True, slots=True)
class NumberPattern:
    like: str
    # Set when the literal tail is longer than the literal head: then the reverse index is the fast path.
    reversed_like: str | None


def _literal_run(text: str) -> int:
    run = 0
    for ch in text:
        if ch in "?*":
            break
        run += 1
    return run


def parse(raw: str, *, loc: tuple[str, ...] = ("query", "pattern")) -> NumberPattern:
    collapsed = re.sub(r"\*+", "*", raw)
    digits_and_marks = collapsed.replace("*", "")
    if not _PATTERN.fullmatch(raw) or len(digits_and_marks) > 11:
        raise ValidationFailed(
            "pattern is up to 11 digits, '?' (one digit) and '*' (any run).",
            loc=loc,
        )
    if "*" not in collapsed and len(collapsed) != 11:
        raise ValidationFailed("Without '*', a pattern must cover all 11 digits.", loc=loc)
    like = collapsed.replace("?", "_").replace("*", "%")
    head, tail = _literal_run(collapsed), _literal_run(collapsed[::-1])
    return NumberPattern(like=like, reversed_like=like[::-1] if tail > head else None)


def matches(pattern: str, msisdn: str) -> bool:
    """Reference semantics (used by tests as the oracle for the SQL search)."""
    regex = "".join("[0-9]" if ch == "?" else "[0-9]*" if ch == "*" else ch for ch in pattern)
    return re.fullmatch(regex, msisdn) is not None
