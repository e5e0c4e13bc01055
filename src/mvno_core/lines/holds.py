"""Holds as a stack: place one, lift one; the line's status follows from the holds still open.

Each use case locks the line row first, so holds on one line are placed and lifted one at a time and
the status written always agrees with the open holds. ``line.suspended`` and ``line.resumed`` are
emitted only when the status really changes; ``hold.placed`` / ``hold.lifted`` every time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import Conflict, Forbidden, IllegalTransition, NotFound
from mvno_core.lines import repository
from mvno_core.lines.errors import HoldLiftForbidden
from mvno_core.lines.lifecycle import HoldReason, LineStatus, ensure_live, may_lift, may_place, reason_text
from mvno_core.lines.schemas import HoldRead, hold_to_read


async def visible_line(ctx: RequestContext, line_id: str, *, lock: bool = False) -> RowMapping:
    """The line if the caller may see it (another MVNO's is the same 404 as a missing one); ``lock``
    holds it for this transaction."""
    row = await repository.get(ctx.session, line_id, lock=lock)
    if row is None:
        raise NotFound.of("Line", line_id)
    ctx.principal.ensure_can_see(row["mvno_id"], "Line", line_id)
    return row


async def line_for_update(ctx: RequestContext, line_id: str) -> RowMapping:
    """The line, locked for this transaction, if the caller may see it (404 otherwise)."""
    return await visible_line(ctx, line_id, lock=True)


async def place(ctx: RequestContext, line_id: str, reason: HoldReason, note: str | None) -> HoldRead:
    """Place a hold (201). One open hold per reason: a second is 409 ``conflict`` with the open one's
    id. Partners may not place ``regulatory`` or ``judicial`` holds (403)."""
    if not may_place(ctx.principal.role, reason):
        raise Forbidden(f"Only the operator may place a {reason.value} hold.")
    line = await line_for_update(ctx, line_id)
    ensure_live(LineStatus(line["status"]))
    return hold_to_read(await place_on_locked(ctx, line, reason, note))


async def place_on_locked(
    ctx: RequestContext, line: RowMapping, reason: HoldReason, note: str | None
) -> dict[str, Any]:
    """Place ``reason`` on a line the caller has locked; used by the timers and disputes too."""
    existing = await repository.open_hold(ctx.session, line["id"], reason.value)
    if existing is not None:
        raise Conflict(f"The line already has an open {reason.value} hold.", existing_id=existing["id"])
    hold = {
        "id": new_id("hld"),
        "line_id": line["id"],
        "msisdn": line["msisdn"],
        "reason": reason.value,
        "note": note,
        "placed_at": ctx.now,
        "placed_by_key_id": ctx.principal.key_id,
        "placed_by_role": ctx.principal.role.value,
        "lifted_at": None,
        "lifted_by_key_id": None,
        "lifted_by_role": None,
        "lift_note": None,
    }
    await repository.insert_hold(ctx.session, hold)
    await record(
        ctx,
        action="hold.placed",
        subject=Subject("line", line["id"]),
        mvno_id=line["mvno_id"],
        data={
            "hold_id": hold["id"],
            "line_id": line["id"],
            "msisdn": line["msisdn"],
            "reason": reason.value,
            "reason_text": reason_text(reason),
            "note": note,
        },
        event_type="hold.placed",
    )
    await _settle_status(ctx, line)
    return hold


async def lift(ctx: RequestContext, line_id: str, hold_id: str, note: str | None) -> HoldRead:
    """Lift an open hold (200). Partners may not lift ``regulatory``, ``judicial`` or ``risk_control``
    holds (403 ``hold_lift_forbidden``). Lifting a lifted hold is 409 ``illegal_transition``."""
    line = await line_for_update(ctx, line_id)
    hold = await repository.get_hold(ctx.session, line_id, hold_id)
    if hold is None:
        raise NotFound.of("Hold", hold_id)
    if not may_lift(ctx.principal.role, HoldReason(hold["reason"])):
        raise HoldLiftForbidden(f"A partner may not lift a {hold['reason']} hold; ask the operator.")
    if hold["lifted_at"] is not None:
        raise IllegalTransition("The hold was lifted already.", current_status="lifted")
    ensure_live(LineStatus(line["status"]))
    return hold_to_read(await lift_on_locked(ctx, line, hold, note))


async def lift_on_locked(
    ctx: RequestContext, line: RowMapping, hold: RowMapping, note: str | None
) -> dict[str, Any]:
    lifted = {
        **hold,
        "lifted_at": ctx.now,
        "lifted_by_key_id": ctx.principal.key_id,
        "lifted_by_role": ctx.principal.role.value,
        "lift_note": note,
    }
    await repository.mark_lifted(ctx.session, lifted)
    await record(
        ctx,
        action="hold.lifted",
        subject=Subject("line", line["id"]),
        mvno_id=line["mvno_id"],
        data={
            "hold_id": hold["id"],
            "line_id": line["id"],
            "msisdn": line["msisdn"],
            "reason": hold["reason"],
            "note": note,
        },
        event_type="hold.lifted",
    )
    await _settle_status(ctx, line)
    return lifted


async def lift_reason_on_locked(ctx: RequestContext, line: RowMapping, reason: HoldReason, note: str) -> bool:
    """Lift the open hold of ``reason``, if there is one (automatic lifts: paid arrears, re-verified)."""
    hold = await repository.open_hold(ctx.session, line["id"], reason.value)
    if hold is None:
        return False
    await lift_on_locked(ctx, line, hold, note)
    return True


async def _settle_status(ctx: RequestContext, line: RowMapping) -> None:
    """Write the status the open holds imply; emit suspended/resumed only on a real change."""
    moved_to, reasons = await repository.settle_status(ctx.session, line["id"])
    if moved_to is None:
        return
    suspended = moved_to == LineStatus.SUSPENDED
    event = "line.suspended" if suspended else "line.resumed"
    await record(
        ctx,
        action=event,
        subject=Subject("line", line["id"]),
        mvno_id=line["mvno_id"],
        data={"line_id": line["id"], "msisdn": line["msisdn"], "open_holds": reasons},
        event_type=event,
    )


async def list_holds(ctx: RequestContext, line_id: str) -> list[HoldRead]:
    await visible_line(ctx, line_id)
    return [hold_to_read(row) for row in await repository.holds_of(ctx.session, line_id)]
