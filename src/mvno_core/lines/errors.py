"""Errors of lines (activation gates, holds), and the constraints lines own."""

from __future__ import annotations

from mvno_core.kernel.problems import Conflict, DomainError, register_constraints
from mvno_core.numbers.errors import NumberUnavailable


class RealNameUnverified(DomainError):
    status, code, title = 409, "real_name_unverified", "The subscriber's identity is not verified"


class CardLimitReached(DomainError):
    status, code, title = 409, "card_limit_reached", "This ID holds the most lines allowed at this MVNO"

    def __init__(self, detail: str, *, limit: int, current: int) -> None:
        super().__init__(detail, limit=limit, current=current)


class HoldLiftForbidden(DomainError):
    status, code, title = 403, "hold_lift_forbidden", "This role may not lift a hold of this reason"


register_constraints(
    {
        # One live line per number: the claim prevents it; this is the database's word on it.
        "uq_lines_live_msisdn": NumberUnavailable,
        "uq_lines_live_iccid": Conflict,
        "uq_lines_live_imsi": Conflict,
        "uq_line_holds_open_reason": Conflict,
        "uq_disputes_open_line_id": Conflict,
    }
)
