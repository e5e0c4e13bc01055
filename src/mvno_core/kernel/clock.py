"""The one injectable clock: every rule that depends on time asks this, never ``datetime.now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

# Days in this service are days in China (dates in queries, month boundaries, "today" for birth dates and
# contract ends); timestamps stay UTC.
CHINA_TIME = ZoneInfo("Asia/Shanghai")


def rfc3339(moment: datetime) -> str:
    """UTC with a ``Z``, as every timestamp in responses and event payloads is written."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock tests move by hand (``advance``), so timers are tested without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment
