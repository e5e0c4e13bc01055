"""ULIDs: Crockford base32 of (48-bit milliseconds, 80 random bits), 26 digits, sortable by time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mvno_core.kernel import ids


def _digit_by_digit(value: int) -> str:
    """The textbook encoding, five bits at a time from the right."""
    digits = []
    for _ in range(26):
        digits.append(ids._CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(digits))


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_the_fast_encoding_is_the_textbook_one(value: int) -> None:
    assert ids.encode(value) == _digit_by_digit(value)


def test_ids_are_26_crockford_digits_after_the_prefix_and_sort_by_time() -> None:
    first = ids.new_id("lin")
    prefix, _, body = first.partition("_")
    assert prefix == "lin"
    assert len(body) == 26
    assert set(body) <= set(ids._CROCKFORD)
    later = [ids.ulid() for _ in range(50)]
    # The first ten digits are the millisecond: never decreasing.
    assert [u[:10] for u in later] == sorted(u[:10] for u in later)
