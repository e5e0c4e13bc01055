"""Line status and holds, as data.

A line is ``active`` while it has no open hold and ``suspended`` while it has at least one: holds stack,
and the status follows from them, never from a flag someone forgot to clear. ``cancelled`` is final.
Every hold reason has a text the subscriber can be told, in Chinese and English.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import IllegalTransition


class LineStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


ALLOWED: dict[LineStatus, frozenset[LineStatus]] = {
    LineStatus.ACTIVE: frozenset({LineStatus.SUSPENDED, LineStatus.CANCELLED}),
    LineStatus.SUSPENDED: frozenset({LineStatus.ACTIVE, LineStatus.CANCELLED}),
    LineStatus.CANCELLED: frozenset(),
}

LIVE_STATUSES = frozenset({LineStatus.ACTIVE, LineStatus.SUSPENDED})


def can_move(current: LineStatus, target: LineStatus) -> bool:
    return target in ALLOWED[current]


def ensure_live(current: LineStatus) -> None:
    """Holds, accounts, disputes and re-verification need a line that has not ended."""
    if current not in LIVE_STATUSES:
        raise IllegalTransition(f"The line is {current.value}.", current_status=current.value)


def status_with_open_holds(open_holds: int) -> LineStatus:
    return LineStatus.SUSPENDED if open_holds > 0 else LineStatus.ACTIVE


class EndReason(StrEnum):
    CANCELLED = "cancelled"  # the subscriber's cancellation (any province)
    FRAUDULENT = "fraudulent"  # a dispute found the line was opened in someone else's name
    ARREARS_TERMINATION = "arrears_termination"  # an arrears hold older than the termination period


class HoldReason(StrEnum):
    ARREARS = "arrears"
    USER_REQUEST = "user_request"
    LOSS_REPORT = "loss_report"
    RISK_CONTROL = "risk_control"
    REVERIFICATION = "reverification"
    REGULATORY = "regulatory"
    JUDICIAL = "judicial"


@dataclass(frozen=True, slots=True)
class ReasonText:
    zh: str
    en: str


REASON_TEXTS: dict[HoldReason, ReasonText] = {
    HoldReason.ARREARS: ReasonText("欠费停机", "Suspended for unpaid charges"),
    HoldReason.USER_REQUEST: ReasonText("用户申请停机", "Suspended at the subscriber's request"),
    HoldReason.LOSS_REPORT: ReasonText("挂失停机", "Suspended after a report of loss"),
    HoldReason.RISK_CONTROL: ReasonText("风险管控停机", "Suspended for a risk check (e.g. a disputed card)"),
    HoldReason.REVERIFICATION: ReasonText(
        "未完成二次实人认证", "Suspended until the holder re-verifies identity"
    ),
    HoldReason.REGULATORY: ReasonText("监管要求停机", "Suspended on a regulator's order"),
    HoldReason.JUDICIAL: ReasonText("司法要求停机", "Suspended on a judicial order"),
}

# Holds an MVNO (partner) may neither place nor lift: orders from outside it, and risk holds it must not
# clear itself. Placing a risk_control hold is allowed to partners (their own fraud checks).
PARTNER_MAY_NOT_PLACE = frozenset({HoldReason.REGULATORY, HoldReason.JUDICIAL})
PARTNER_MAY_NOT_LIFT = frozenset({HoldReason.REGULATORY, HoldReason.JUDICIAL, HoldReason.RISK_CONTROL})


def may_place(role: Role, reason: HoldReason) -> bool:
    return role is Role.OPERATOR or (role is Role.PARTNER and reason not in PARTNER_MAY_NOT_PLACE)


def may_lift(role: Role, reason: HoldReason) -> bool:
    return role is Role.OPERATOR or (role is Role.PARTNER and reason not in PARTNER_MAY_NOT_LIFT)


def reason_text(reason: str) -> str:
    """The text a subscriber is told: Chinese, then English."""
    text = REASON_TEXTS[HoldReason(reason)]
    return f"{text.zh} / {text.en}"


class DisputeOutcome(StrEnum):
    OWNER_CONFIRMED = "owner_confirmed"
    FRAUDULENT = "fraudulent"


# IMSI = MCC 460 + the MNC of the number's host (domain.md).
MNCS_BY_HOST: dict[str, frozenset[str]] = {
    "CMCC": frozenset({"00", "02", "04", "07", "08"}),
    "CUCC": frozenset({"01", "06", "09"}),
    "CTCC": frozenset({"03", "05", "11"}),
}
