"""Errors of cancellations."""

from __future__ import annotations

from typing import Any

from mvno_core.kernel.problems import Conflict, DomainError, register_constraints


class CancellationBlocked(DomainError):
    status, code, title = 409, "cancellation_blocked", "The line cannot be cancelled yet"

    def __init__(self, detail: str, *, blockers: list[dict[str, Any]]) -> None:
        super().__init__(detail, blockers=blockers)


# The line lock already serialises cancellations of one line; this is the database's word on it.
register_constraints({"uq_cancellations_line_id": Conflict})
