"""Porting eligibility (携号转网): may this line's number move to another operator now?

Five conditions of the 2019 nationwide rules, plus the segment rule: numbers on the MVNO resale
segments have been excluded from porting, so by default every line here answers ``segment_not_portable``
(the setting ``MVNO_SEGMENTS_PORTABLE`` lifts that the day the rule changes). Every failed condition is
reported, not only the first, so the subscriber can be told everything to settle at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.context import RequestContext
from mvno_core.lines import holds, repository
from mvno_core.lines.schemas import PortingEligibility, PortingReason

MIN_DAYS_SINCE_LAST_PORT = 120


@dataclass(frozen=True, slots=True)
class PortingFacts:
    verified: bool
    status: str
    arrears_fen: int
    contract_end: date | None
    last_ported_at: datetime | None
    segments_portable: bool


def porting_reasons(facts: PortingFacts, now: datetime) -> list[PortingReason]:
    """Every condition the line fails, in a fixed order (empty: eligible)."""
    today = now.astimezone(CHINA_TIME).date()
    reasons: list[PortingReason] = []

    def fail(code: str, detail: str, **members: Any) -> None:
        reasons.append(PortingReason(code=code, detail=detail, **members))

    if not facts.verified:
        fail("real_name_unverified", "The subscriber's identity is not verified.")
    if facts.status != "active":
        fail("line_not_normal", f"The line is {facts.status}; only a line in normal service may port.")
    if facts.arrears_fen > 0:
        fail("arrears_outstanding", "Unpaid charges must be settled first.", amount_fen=facts.arrears_fen)
    if facts.contract_end is not None and facts.contract_end >= today:
        fail("contract_active", "A contract (lock-in) is still running.", contract_end=facts.contract_end)
    recently = timedelta(days=MIN_DAYS_SINCE_LAST_PORT)
    if facts.last_ported_at is not None and now - facts.last_ported_at < recently:
        fail("ported_recently", f"The number ported less than {MIN_DAYS_SINCE_LAST_PORT} days ago.")
    if not facts.segments_portable:
        fail("segment_not_portable", "Numbers on the MVNO resale segments are excluded from porting.")
    return reasons


async def eligibility(ctx: RequestContext, line_id: str) -> PortingEligibility:
    """Read-only. The service keeps no porting history yet (ports happen at the host operators), so
    ``ported_recently`` never applies until it does."""
    line = await holds.visible_line(ctx, line_id)
    facts = await repository.subscriber_facts(ctx.session, line["subscriber_id"], ctx.now)
    reasons = porting_reasons(
        PortingFacts(
            verified=bool(facts and facts["real_name_status"] == "verified"),
            status=line["status"],
            arrears_fen=line["arrears_fen"],
            contract_end=line["contract_end"],
            last_ported_at=None,
            segments_portable=ctx.settings.segments_portable,
        ),
        ctx.now,
    )
    return PortingEligibility(line_id=line_id, eligible=not reasons, reasons=reasons)
