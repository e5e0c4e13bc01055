"""Number search patterns: ``?`` is one digit, ``*`` any run of digits, matched against all 11 digits.

A pattern becomes a SQL ``LIKE`` (``?``→``_``, ``*``→``%``). Three indexes serve it: the primary key
(``C`` collation) for a literal head (``1700123*``), an index on ``reverse(msisdn)`` for a literal tail
(``*8888``: the reversed pattern has a literal head), and a trigram index for an inner run (``*520*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mvno_core.kernel.problems import ValidationFailed

_PATTERN = re.compile(r"^[0-9?*]{1,32}$")


@dataclass(frozen=True, slots=True)
class NumberPattern:
    like: str
    # The same pattern reversed, set when its literal tail is the better index entry (*8888, 1650*8888):
    # longer than the head, or 3+ digits while the head names no single block. reverse(msisdn) LIKE
    # reversed_like is then a range scan of the reverse index.
    reversed_like: str | None
    # The digits before the first wildcard ("1700123" in 1700123*): they name the candidate blocks.
    head: str
    # Literal digits at the end (4 in *8888), and in the longest run anywhere after the head.
    tail_run: int
    longest_run_after_head: int
    literal_digits: int

    @property
    def block_prefix_like(self) -> str:
        """A LIKE over 7-digit block prefixes that keeps only blocks this pattern can match in."""
        return self.head[:7] if len(self.head) >= 7 else self.head + "%"

    @property
    def is_prefix(self) -> bool:
        """Only a literal head and then anything (1700123*): a primary-key range."""
        return self.like == self.head + "%"

    @property
    def index_driven(self) -> bool:
        """Rare matches spread over many blocks, and an index that finds them directly: searched from
        that index rather than block by block.

        - A literal tail of 3+ digits (*888, 170*8888): a range of ≤ 1/1,000 of ``reverse(msisdn)``.
        - Else a run of 3+ literal digits after the head and 4+ literal digits in all (*5201*): trigrams.
        A head of 7+ digits names a single block, which is walked instead. Patterns with no run of 3
        (*1?2?3?4) have no index to start from and are walked block by block.
        """
        if len(self.head) >= 7:
            return False
        if self.reversed_like is not None and self.tail_run >= 3:
            return True
        return self.longest_run_after_head >= 3 and self.literal_digits - len(self.head) >= 4


def _literal_run(text: str) -> int:
    run = 0
    for ch in text:
        if ch in "?*":
            break
        run += 1
    return run


def parse(raw: str, *, loc: tuple[str, ...] = ("query", "pattern")) -> NumberPattern:
    # Written like an MSISDN input: spaces and hyphens are ignored, a +86 country code dropped.
    raw = re.sub(r"[\s\-]", "", raw).removeprefix("+86")
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
    runs_after_head = [len(run) for run in re.split(r"[?*]", collapsed[head:])]
    return NumberPattern(
        like=like,
        reversed_like=like[::-1] if tail > head or (tail >= 3 and head < 7) else None,
        head=collapsed[:head],
        tail_run=tail,
        longest_run_after_head=max(runs_after_head, default=0),
        literal_digits=sum(ch.isdigit() for ch in collapsed),
    )


def matches(pattern: str, msisdn: str) -> bool:
    """Reference semantics (used by tests as the oracle for the SQL search)."""
    regex = "".join("[0-9]" if ch == "?" else "[0-9]*" if ch == "*" else ch for ch in pattern)
    return re.fullmatch(regex, msisdn) is not None


# At most this many (block-prefix LIKE, suffix range) pairs in a cover; beyond, the block is walked.
COVER_BUDGET = 64
SUFFIX_DIGITS = 4  # a block is a 7-digit prefix and the 10,000 suffixes 0000–9999


def block_cover(like: str, *, budget: int = COVER_BUDGET) -> list[tuple[str, str, str]] | None:
    """Where in a block a loose pattern can match: ``(prefix_like, low, high)`` triples such that every
    number ``p + s`` matching ``like`` (``p`` the 7-digit block prefix, ``s`` the 4-digit suffix) has a
    triple with ``p LIKE prefix_like`` and ``low <= s <= high``. A superset: the caller still applies
    ``like`` itself. ``None`` when no cover within ``budget`` triples saves a walk of the block.

    ``%520%``: ``s`` in 5200–5209 or ?520 (any block), 2000–2099 (blocks ending in 5), 0000–0999 (ending
    in 52), or anything (blocks containing 520): 15 small ranges instead of 10,000 numbers a block.
    """
    prefix_len = 11 - SUFFIX_DIGITS
    cover: set[tuple[str, str, str]] = set()
    # p + s matches like = head + tail iff p matches head and s matches tail, for some cut of the
    # pattern; a '%' at the cut may match on both sides, so it is kept on both.
    cuts = [(like[:i], like[i:]) for i in range(len(like) + 1)]
    cuts += [(like[: i + 1], like[i:]) for i, ch in enumerate(like) if ch == "%"]
    for head, tail in cuts:
        if not (_fits(head, prefix_len) and _fits(tail, SUFFIX_DIGITS)):
            continue
        for fixed in _fixed_length(tail, SUFFIX_DIGITS):
            ranges = _ranges(fixed, budget)
            if ranges is None:
                return None
            cover.update((head, low, high) for low, high in ranges)
            if len(cover) > budget:
                return None
    whole = ("0" * SUFFIX_DIGITS, "9" * SUFFIX_DIGITS)
    if any(head.strip("%") == "" and (low, high) == whole for head, low, high in cover):
        return None  # every block needs all of its numbers: nothing to save
    return sorted(cover)


def _fits(part: str, length: int) -> bool:
    """Can LIKE ``part`` match a string of exactly ``length`` digits?"""
    fixed = len(part) - part.count("%")
    return fixed == length or ("%" in part and fixed <= length)


def _fixed_length(part: str, length: int) -> list[str]:
    """``part`` (LIKE) as the patterns of exactly ``length`` characters it stands for ('%' → '_'s)."""
    if "%" not in part:
        return [part] if len(part) == length else []
    i = part.index("%")
    spare = length - (len(part) - part.count("%"))
    return [
        expanded
        for run in range(spare + 1)
        for expanded in _fixed_length(part[:i] + "_" * run + part[i + 1 :], length)
    ]


def _ranges(fixed: str, budget: int) -> list[tuple[str, str]] | None:
    """The suffixes matching ``fixed`` ('_' or a digit per place) as ranges: each '_' before the last
    digit is spelled out (10 ranges each), the trailing ones make the range."""
    last_digit = max((i for i, ch in enumerate(fixed) if ch != "_"), default=-1)
    free = [i for i in range(last_digit) if fixed[i] == "_"]
    if 10 ** len(free) > budget:
        return None
    ranges = []
    for n in range(10 ** len(free)):
        chars = list(fixed)
        for place, digit in zip(free, f"{n:0{len(free)}d}" if free else "", strict=True):
            chars[place] = digit
        head = "".join(chars[: last_digit + 1])
        pad = len(fixed) - len(head)
        ranges.append((head + "0" * pad, head + "9" * pad))
    return ranges
