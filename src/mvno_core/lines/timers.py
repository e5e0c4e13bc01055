"""Line timers, run by the sweeper (in the server and ``mvno-core sweep``) on the injectable clock.

- a re-verification request past its deadline → a ``reverification`` hold on its line;
- arrears with ``overdue_since`` older than ``arrears_hold_after_days`` (30) → an ``arrears`` hold;
- an ``arrears`` hold older than ``arrears_termination_after_days`` (60) → the line ends
  (``arrears_termination``) and its number is quarantined.

Each step takes one batch of due rows locked ``FOR UPDATE SKIP LOCKED``, so two sweeps running at once
take different rows and each thing happens once; what is done is no longer due, so a step is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mvno_core.kernel.context import RequestContext
from mvno_core.lines import holds, repository, service
from mvno_core.lines.lifecycle import EndReason, HoldReason


@dataclass(slots=True)
class TimerReport:
    reverifications_overdue: int = 0
    arrears_holds: int = 0
    arrears_terminations: int = 0

    @property
    def total(self) -> int:
        return self.reverifications_overdue + self.arrears_holds + self.arrears_terminations

    @property
    def busiest(self) -> int:
        """The fullest step of a batch: a full step means more may be due."""
        return max(self.reverifications_overdue, self.arrears_holds, self.arrears_terminations)

    def add(self, other: TimerReport) -> None:
        self.reverifications_overdue += other.reverifications_overdue
        self.arrears_holds += other.arrears_holds
        self.arrears_terminations += other.arrears_terminations


async def run_due(ctx: RequestContext, *, batch: int = 500) -> TimerReport:
    """One batch of each timer, in the caller's transaction."""
    report = TimerReport()
    for request in await repository.due_reverifications(ctx.session, ctx.now, batch):
        report.reverifications_overdue += 1
        line = await repository.get(ctx.session, request["line_id"], lock=True)
        if line is None or line["status"] == "cancelled":
            continue
        if await repository.open_hold(ctx.session, line["id"], HoldReason.REVERIFICATION.value) is None:
            await holds.place_on_locked(
                ctx, line, HoldReason.REVERIFICATION, f"re-verification {request['id']} not done in time"
            )

    cutoff = (ctx.now - timedelta(days=ctx.settings.arrears_hold_after_days)).date()
    for line in await repository.lines_due_arrears_hold(ctx.session, cutoff, batch):
        await holds.place_on_locked(
            ctx,
            line,
            HoldReason.ARREARS,
            f"arrears of {line['arrears_fen']} fen overdue since {line['overdue_since']}",
        )
        report.arrears_holds += 1

    placed_before = ctx.now - timedelta(days=ctx.settings.arrears_termination_after_days)
    for line in await repository.lines_due_arrears_termination(ctx.session, placed_before, batch):
        await service.end_line(ctx, line, EndReason.ARREARS_TERMINATION)
        report.arrears_terminations += 1
    return report
