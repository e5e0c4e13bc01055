"""Every mutation writes its audit entry and its event (same call, same transaction): a call of the
journal without an event type is allowed only for records of access that change nothing (reads of
personal data, console sign-in and sign-out), which are audited too."""

from __future__ import annotations

import re
from pathlib import Path

import mvno_core

SOURCE = Path(mvno_core.__file__).parent
CALL = re.compile(r"(?:await record|journal\.pieces)\(")


def _arguments(text: str, start: int) -> str:
    """The text between the call's parentheses (nested ones included)."""
    depth, index = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        index += 1
    return text[start : index - 1]


READS = {"subscribers/service.py": {"_audit_identity_read"}, "console/router.py": {"_journal"}}


def test_every_journal_call_names_an_event() -> None:
    missing = []
    for path in SOURCE.rglob("*.py"):
        text = path.read_text()
        for match in CALL.finditer(text):
            arguments = _arguments(text, match.end())
            if "event_type" in arguments or "**" in arguments:
                continue  # ** passes a prepared entry, whose builder names the event (checked below)
            function = re.findall(r"\n(?:async )?def (\w+)", text[: match.start()])[-1]
            if function not in READS.get(str(path.relative_to(SOURCE)), set()):
                missing.append(f"{path.relative_to(SOURCE)}:{function}")
    assert missing == []


def test_prepared_entries_name_their_event() -> None:
    for name in ("reservations/service.py", "lines/activation.py"):
        text = (SOURCE / name).read_text()
        builders = re.findall(r"def (_\w+_entry)\(.*?\n    return \{(.*?)\n    \}", text, re.S)
        assert builders, name  # the pattern must see them, or this test proves nothing
        for builder in builders:
            assert '"event_type"' in builder[1], (name, builder[0])
