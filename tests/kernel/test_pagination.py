"""Opaque cursors, without a database."""

from __future__ import annotations

import pytest

from mvno_core.kernel.pagination import decode_cursor, encode_cursor
from mvno_core.kernel.problems import ValidationFailed


def test_cursor_round_trip_and_tampering() -> None:
    cursor = encode_cursor(12, 34)
    assert decode_cursor(cursor, int, int) == (12, 34)
    assert decode_cursor(None, int) is None
    for bad in ("not-base64!!", encode_cursor("x", 1), encode_cursor(1), "e30"):
        with pytest.raises(ValidationFailed):
            decode_cursor(bad, int, int)
