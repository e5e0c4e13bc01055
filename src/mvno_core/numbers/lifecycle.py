"""The number state machine: its statuses, its legal moves, and the lapsed-reservation rule.

::

    available ──claim──▶ reserved ──release / lapse──▶ available
        │                   │
        └──activate──▶ in_use ◀──activate (consumes the reservation)
                         │
                     quarantine (line ended)
                         ▼
                    quarantined ──reclaim (same person)──▶ in_use
                         └──release from quarantine──▶ available

Release from quarantine goes through a reissue batch when a recycling platform is registered
(``recycling/``, 二次号码焕新): the number stays ``quarantined`` (``reissue_batch_id`` set) until every
platform acknowledged the batch or its deadline passed, then moves as above; no extra status.

A reservation whose ``reserved_until`` has come (``<=`` now) no longer holds its number: the number *is*
available to every read and claim from that instant, whether or not the sweeper has written it down yet.
That rule is written twice, once for Python (``reservation_lapsed``) and once for SQL (``LAPSED_SQL``);
a test runs both over the same rows, the boundary instant included.

``numbers.statements`` builds every write of ``numbers.status`` from ``ALLOWED`` (``sources_of``), so
the table is what the database enforces, not a comment beside it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from mvno_core.kernel.problems import IllegalTransition


class NumberStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    IN_USE = "in_use"
    QUARANTINED = "quarantined"


# The moves, keyed by the *effective* status (a lapsed reservation counts as available).
ALLOWED: dict[NumberStatus, frozenset[NumberStatus]] = {
    NumberStatus.AVAILABLE: frozenset({NumberStatus.RESERVED, NumberStatus.IN_USE}),
    NumberStatus.RESERVED: frozenset({NumberStatus.AVAILABLE, NumberStatus.IN_USE}),
    NumberStatus.IN_USE: frozenset({NumberStatus.QUARANTINED}),
    NumberStatus.QUARANTINED: frozenset({NumberStatus.AVAILABLE, NumberStatus.IN_USE}),
}


def can_move(current: NumberStatus, target: NumberStatus) -> bool:
    return target in ALLOWED[current]


def ensure_move(current: NumberStatus, target: NumberStatus) -> NumberStatus:
    if not can_move(current, target):
        raise IllegalTransition(
            f"A number that is {current.value} cannot become {target.value}.", current_status=current.value
        )
    return target


def sources_of(target: NumberStatus) -> frozenset[NumberStatus]:
    """Every effective status from which ``target`` may be reached."""
    return frozenset(status for status, targets in ALLOWED.items() if target in targets)


def reservation_lapsed(status: str, reserved_until: datetime | None, now: datetime) -> bool:
    """A reservation stops holding its number at ``reserved_until`` itself (the instant is included)."""
    return status == NumberStatus.RESERVED and reserved_until is not None and reserved_until <= now


def effective_status(status: str, reserved_until: datetime | None, now: datetime) -> NumberStatus:
    if reservation_lapsed(status, reserved_until, now):
        return NumberStatus.AVAILABLE
    return NumberStatus(status)


# --- The same rules in SQL, over a numbers row aliased ``n`` and a ``:now`` parameter. ---

LAPSED_SQL = "(n.status = 'reserved' AND n.reserved_until <= :now)"

EFFECTIVE_STATUS_SQL = f"CASE WHEN {LAPSED_SQL} THEN 'available' ELSE n.status END"


def in_effective_status_sql(statuses: frozenset[NumberStatus]) -> str:
    """SQL true when ``n``'s effective status is one of ``statuses``.

    Written so that the leading ``n.status IN (…)`` can use the partial index ``ix_numbers_claimable``
    (available or reserved) when ``available`` is among the statuses.
    """
    stored = {status.value for status in statuses}
    available = NumberStatus.AVAILABLE in statuses
    if available:
        stored.add(NumberStatus.RESERVED.value)  # a lapsed reservation is available
    stored_sql = ", ".join(f"'{value}'" for value in sorted(stored))
    held = NumberStatus.RESERVED in statuses
    if available and not held:
        return f"(n.status IN ({stored_sql}) AND (n.status <> 'reserved' OR {LAPSED_SQL}))"
    if held and not available:
        return f"(n.status IN ({stored_sql}) AND NOT {LAPSED_SQL})"
    return f"n.status IN ({stored_sql})"


# "This number may be claimed now": its effective status is one a reservation may start from.
CLAIMABLE_SQL = in_effective_status_sql(sources_of(NumberStatus.RESERVED))
