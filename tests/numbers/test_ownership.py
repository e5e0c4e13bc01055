"""Only the ``numbers`` domain writes ``numbers``: every other module goes through its statement pieces."""

from __future__ import annotations

import re
from pathlib import Path

import mvno_core

SOURCE = Path(mvno_core.__file__).parent
OWNER = SOURCE / "numbers"
WRITES_NUMBERS = re.compile(
    r"\b(UPDATE\s+numbers|INSERT\s+INTO\s+numbers|DELETE\s+FROM\s+numbers|TRUNCATE\s+numbers)\b"
    r"|\b(update|insert|delete)\(\s*Number\b",
    re.IGNORECASE,
)


def test_no_module_outside_numbers_writes_numbers() -> None:
    offenders = [
        f"{path.relative_to(SOURCE)}:{line_no}"
        for path in SOURCE.rglob("*.py")
        if OWNER not in path.parents
        for line_no, line in enumerate(path.read_text().splitlines(), start=1)
        if WRITES_NUMBERS.search(line)
    ]
    assert offenders == []


def test_the_guard_sees_a_write() -> None:
    # The pattern must catch the shapes the code base uses, or the test above proves nothing.
    assert WRITES_NUMBERS.search("UPDATE numbers n SET status = 'available'")
    assert WRITES_NUMBERS.search('"INSERT INTO numbers (msisdn, status, grade) "')
    assert WRITES_NUMBERS.search("stmt = update(Number).values(status='in_use')")
    assert not WRITES_NUMBERS.search("SELECT n.msisdn FROM numbers n")
