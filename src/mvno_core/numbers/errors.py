"""Errors of the number state machine."""

from __future__ import annotations

from mvno_core.kernel.problems import DomainError


class NumberUnavailable(DomainError):
    status, code, title = 409, "number_unavailable", "Number not claimable by this caller"
