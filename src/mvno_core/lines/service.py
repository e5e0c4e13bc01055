"""Line reads and the use cases around a live line: account, re-verification, disputes, endings.

Activation lives in ``activation.py`` (the hot path), holds in ``holds.py``, timers in ``timers.py``.
Each use case here locks the line first (``holds.line_for_update``), changes it, and journals every
change in the caller's transaction.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import RowMapping

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import Conflict, IllegalTransition, NotFound
from mvno_core.kernel.statements import Piece, run_all
from mvno_core.lines import holds, repository, statements
from mvno_core.lines.lifecycle import DisputeOutcome, EndReason, HoldReason, LineStatus, ensure_live
from mvno_core.lines.schemas import (
    AccountUpdate,
    DisputeRead,
    LineRead,
    ReverificationRead,
    line_to_read,
)
from mvno_core.numbers import statements as number_moves
from mvno_core.subscribers import service as subscribers


async def get_visible(ctx: RequestContext, line_id: str) -> LineRead:
    row = await holds.visible_line(ctx, line_id)
    reasons = await repository.open_hold_reasons(ctx.session, [line_id])
    return line_to_read(row, reasons[line_id])


async def list_visible(
    ctx: RequestContext,
    *,
    mvno_id: str | None,
    status: str | None,
    subscriber_id: str | None,
    msisdn: str | None,
    after_id: str | None,
    limit: int,
) -> list[LineRead]:
    visible, mvno_filter = ctx.principal.narrow(mvno_id)
    if not visible:
        return []
    rows = await repository.list_page(
        ctx.session,
        mvno_id=mvno_filter,
        status=status,
        subscriber_id=subscriber_id,
        msisdn=msisdn,
        after_id=after_id,
        limit=limit,
    )
    reasons = await repository.open_hold_reasons(ctx.session, [row["id"] for row in rows])
    return [line_to_read(row, reasons[row["id"]]) for row in rows]


async def status_counts(ctx: RequestContext, mvno_id: str) -> dict[str, int]:
    """How many lines the MVNO has in each status (every status present, zeros included)."""
    ctx.principal.ensure_can_see(mvno_id, "MVNO", mvno_id)
    counts = await repository.count_by_status(ctx.session, mvno_id)
    return {status.value: counts.get(status.value, 0) for status in LineStatus}


async def update_account(ctx: RequestContext, line_id: str, data: AccountUpdate) -> LineRead:
    """Billing's snapshot. Arrears back to 0 lifts an open ``arrears`` hold (restored service); the
    timers place one 30 days after ``overdue_since`` while arrears remain."""
    line = await holds.line_for_update(ctx, line_id)
    ensure_live(LineStatus(line["status"]))
    overdue_since = data.overdue_since if data.arrears_fen > 0 else None
    await repository.update_account(
        ctx.session,
        line_id,
        balance_fen=data.balance_fen,
        arrears_fen=data.arrears_fen,
        overdue_since=overdue_since,
        now=ctx.now,
    )
    await record(
        ctx,
        action="line.account_updated",
        subject=Subject("line", line_id),
        mvno_id=line["mvno_id"],
        data={
            "balance_fen": data.balance_fen,
            "arrears_fen": data.arrears_fen,
            "overdue_since": overdue_since.isoformat() if overdue_since else None,
        },
        event_type="line.account_updated",
    )
    if data.arrears_fen == 0:
        await holds.lift_reason_on_locked(ctx, line, HoldReason.ARREARS, "arrears paid")
    return await get_visible(ctx, line_id)


async def request_reverification(ctx: RequestContext, line_id: str, reason: str) -> ReverificationRead:
    """Ask the subscriber for a second face check within ``reverification_hours`` (24 h); if none
    passes by then, the timers place a ``reverification`` hold."""
    line = await holds.line_for_update(ctx, line_id)
    ensure_live(LineStatus(line["status"]))
    request = {
        "id": new_id("rvr"),
        "line_id": line_id,
        "msisdn": line["msisdn"],
        "subscriber_id": line["subscriber_id"],
        "reason": reason,
        "status": "pending",
        "created_at": ctx.now,
        "deadline_at": ctx.now + timedelta(hours=ctx.settings.reverification_hours),
        "resolved_at": None,
    }
    await repository.insert_reverification(ctx.session, request)
    await record(
        ctx,
        action="reverification.requested",
        subject=Subject("line", line_id),
        mvno_id=line["mvno_id"],
        data={
            "request_id": request["id"],
            "reason": reason,
            "deadline_at": request["deadline_at"].isoformat(),
        },
        event_type="reverification.requested",
    )
    return ReverificationRead(**{k: v for k, v in request.items() if k != "msisdn"})


async def after_passed_verification(ctx: RequestContext, subscriber_id: str) -> None:
    """A passed verification satisfies the subscriber's pending requests and lifts the
    ``reverification`` holds they caused."""
    satisfied = await repository.satisfy_reverifications(ctx.session, subscriber_id, ctx.now)
    for line_id in sorted({row["line_id"] for row in satisfied}):
        line = await repository.get(ctx.session, line_id, lock=True)
        if line is not None and line["status"] != LineStatus.CANCELLED:
            await holds.lift_reason_on_locked(ctx, line, HoldReason.REVERIFICATION, "identity re-verified")
    if satisfied:
        await record(
            ctx,
            action="reverification.satisfied",
            subject=Subject("subscriber", subscriber_id),
            mvno_id=satisfied[0]["mvno_id"],
            data={"requests": [row["id"] for row in satisfied]},
            event_type="reverification.satisfied",
        )


async def open_dispute(ctx: RequestContext, line_id: str, note: str | None) -> DisputeRead:
    """ "Not my card": a ``risk_control`` hold at once (or the one already open), until resolved."""
    line = await holds.line_for_update(ctx, line_id)
    ensure_live(LineStatus(line["status"]))
    existing = await repository.open_dispute_of(ctx.session, line_id)
    if existing is not None:
        raise Conflict("The line has an open dispute already.", existing_id=existing["id"])
    hold = await repository.open_hold(ctx.session, line_id, HoldReason.RISK_CONTROL.value)
    hold_id = (
        hold["id"] if hold else (await holds.place_on_locked(ctx, line, HoldReason.RISK_CONTROL, note))["id"]
    )
    dispute = {
        "id": new_id("dsp"),
        "line_id": line_id,
        "msisdn": line["msisdn"],
        "mvno_id": line["mvno_id"],
        "note": note,
        "status": "open",
        "hold_id": hold_id,
        "opened_at": ctx.now,
        "opened_by_key_id": ctx.principal.key_id,
        "resolved_at": None,
    }
    await repository.insert_dispute(ctx.session, dispute)
    await record(
        ctx,
        action="dispute.opened",
        subject=Subject("dispute", dispute["id"]),
        mvno_id=line["mvno_id"],
        data={"line_id": line_id, "msisdn": line["msisdn"], "hold_id": hold_id, "note": note},
        event_type="dispute.opened",
    )
    return DisputeRead(**{k: v for k, v in dispute.items() if k not in ("mvno_id", "opened_by_key_id")})


async def resolve_dispute(ctx: RequestContext, dispute_id: str, outcome: DisputeOutcome) -> DisputeRead:
    """Operator only. ``owner_confirmed`` lifts the dispute's hold; ``fraudulent`` ends the line (no
    refund checks: it was never the subscriber's) and quarantines the number."""
    ctx.principal.ensure_operator()
    dispute = await repository.get_dispute(ctx.session, dispute_id)
    if dispute is None:
        raise NotFound.of("Dispute", dispute_id)
    line = await holds.line_for_update(ctx, dispute["line_id"])
    if dispute["status"] != "open":
        raise IllegalTransition("The dispute is resolved already.", current_status=dispute["status"])
    await repository.resolve_dispute(ctx.session, dispute_id, outcome.value, ctx.now, ctx.principal.key_id)
    await record(
        ctx,
        action="dispute.resolved",
        subject=Subject("dispute", dispute_id),
        mvno_id=line["mvno_id"],
        data={"line_id": line["id"], "outcome": outcome.value},
        event_type="dispute.resolved",
    )
    if outcome is DisputeOutcome.OWNER_CONFIRMED:
        if line["status"] != LineStatus.CANCELLED:
            await holds.lift_reason_on_locked(ctx, line, HoldReason.RISK_CONTROL, "dispute: owner confirmed")
    else:
        await end_line(ctx, line, EndReason.FRAUDULENT)
    resolved = await repository.get_dispute(ctx.session, dispute_id)
    assert resolved is not None
    return DisputeRead(**{k: resolved[k] for k in DisputeRead.model_fields})


async def end_line(ctx: RequestContext, line: RowMapping, reason: EndReason) -> None:
    """End a live line: ``cancelled`` with ``reason``, the subscriber's card counter down, the number
    quarantined for ``quarantine_days`` through the numbers state machine, ``line.cancelled``."""
    ensure_live(LineStatus(line["status"]))
    until = ctx.now + timedelta(days=ctx.settings.quarantine_days)
    pieces: list[Piece] = [
        Piece("target", "SELECT CAST(:target_line_id AS text) AS line_id", {"target_line_id": line["id"]}),
        *statements.end_lines(name="ended", source="target", reason=reason.value, now=ctx.now),
        number_moves.quarantine(name="quarantined", source="ended", until=until, now=ctx.now),
    ]
    ended = await run_all(ctx.session, pieces, "SELECT id, msisdn FROM ended")
    if not ended:
        raise IllegalTransition("The line has ended already.", current_status=LineStatus.CANCELLED.value)
    await record(
        ctx,
        action="line.cancelled",
        subject=Subject("line", line["id"]),
        mvno_id=line["mvno_id"],
        data={
            "line_id": line["id"],
            "msisdn": line["msisdn"],
            "reason": reason.value,
            "quarantine_until": until.isoformat(),
        },
        event_type="line.cancelled",
    )


subscribers.after_passed_verification.append(after_passed_verification)


async def dispute_ids(ctx: RequestContext, line_ids: list[str]) -> list[str]:
    """Ids of these lines' disputes (open or resolved), for their history."""
    return await repository.dispute_ids_of(ctx.session, line_ids)
