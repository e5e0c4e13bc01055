"""MVNO exit takeover (承接): start one, read one, and run one batch of it.

Starting checks the receiver can hold everything (every host and licensed province the exiting MVNO's
blocks need: ``host_mismatch`` / ``region_not_licensed``, 422), turns the exiting MVNO ``exiting`` and
records the totals; the work is done by ``worker`` in committed batches, in phases:

1. ``blocks`` — block rows change ``mvno_id`` (numbers never change: ownership lives on the block);
2. ``subscribers`` — each subscriber with its lines (holds follow the line), verifications, re-verification
   requests, disputes and cancellations; a person already at the receiver merges into that record
   (``merged_into``; the old id still resolves). Lines over the card cap are kept: the counter is summed,
   and the cap's conditional update refuses new activations until it is below the cap again;
3. ``reservations`` — they move too: a live one keeps holding its number, now for the receiver;
4. ``finish`` — stragglers, the exiting MVNO ``terminated``, ``takeover.completed``.

Each batch locks the takeover row (``SKIP LOCKED``: one worker at a time per takeover), moves rows still
owned by the exiting MVNO (so a repeated batch moves nothing twice), bumps the counters and writes an audit
entry, all in one transaction. A crash loses at most the uncommitted batch, which the next worker redoes.
"""

from __future__ import annotations

from sqlalchemy import RowMapping

from mvno_core.audit.journal import Subject, record
from mvno_core.blocks.errors import HostMismatch, RegionNotLicensed
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import Conflict, NotFound
from mvno_core.mvnos import repository as mvnos
from mvno_core.mvnos.lifecycle import MvnoStatus, ensure_move, ensure_takes_new_business
from mvno_core.takeovers import repository
from mvno_core.takeovers.schemas import TakeoverCreate, TakeoverRead, to_read

BLOCK_BATCH = 50
SUBSCRIBER_BATCH = 2000
RESERVATION_BATCH = 5000
COMPLETED_EVENT = "takeover.completed"
STARTED_EVENT = "takeover.started"


async def start(ctx: RequestContext, data: TakeoverCreate) -> TakeoverRead:
    ctx.principal.ensure_operator()
    if data.from_mvno_id == data.to_mvno_id:
        raise Conflict("An MVNO cannot take itself over.")
    # Both rows locked in id order (two takeovers naming the same pair cannot deadlock).
    locked = {}
    for mvno_id in sorted((data.from_mvno_id, data.to_mvno_id)):
        mvno = await mvnos.get(ctx.session, mvno_id, lock="update")
        if mvno is None:
            raise NotFound.of("MVNO", mvno_id)
        locked[mvno_id] = mvno
    exiting, receiver = locked[data.from_mvno_id], locked[data.to_mvno_id]
    existing = await repository.existing_for(ctx.session, exiting.id)
    if existing is not None:
        raise Conflict("This MVNO is being or has been taken over.", existing_id=existing)
    ensure_move(MvnoStatus(exiting.status), MvnoStatus.EXITING)
    ensure_takes_new_business(MvnoStatus(receiver.status))
    needs = await repository.needs(ctx.session, exiting.id)
    missing_hosts = sorted({row["host"] for row in needs} - set(receiver.hosts))
    if missing_hosts:
        raise HostMismatch(f"The receiver does not work with host(s) {', '.join(missing_hosts)}.")
    missing_provinces = sorted({row["province"] for row in needs} - set(receiver.licensed_provinces))
    if missing_provinces:
        raise RegionNotLicensed(
            f"The receiver is not licensed in province(s) {', '.join(missing_provinces)}."
        )

    totals = await repository.totals(ctx.session, exiting.id)
    takeover = {
        "id": new_id("tko"),
        "from_mvno_id": exiting.id,
        "to_mvno_id": receiver.id,
        "reason": data.reason,
        "status": "running",
        "phase": "blocks",
        "cursor": "",
        "blocks_total": totals["blocks"],
        "subscribers_total": totals["subscribers"],
        "lines_total": totals["lines"],
        "started_at": ctx.now,
        "updated_at": ctx.now,
        "completed_at": None,
        "created_by_key_id": ctx.principal.key_id,
    }
    await repository.set_mvno_status(ctx.session, exiting.id, MvnoStatus.EXITING.value, data.reason, ctx.now)
    await repository.insert(ctx.session, takeover)
    await record(
        ctx,
        action="mvno.exiting",
        subject=Subject("mvno", exiting.id),
        mvno_id=exiting.id,
        data={
            "from": exiting.status,
            "to": MvnoStatus.EXITING.value,
            "reason": data.reason,
            "takeover_id": takeover["id"],
        },
        event_type="mvno.exiting",
    )
    await record(
        ctx,
        action=STARTED_EVENT,
        subject=Subject("takeover", takeover["id"]),
        mvno_id=receiver.id,
        data={
            "from_mvno_id": exiting.id,
            "to_mvno_id": receiver.id,
            "reason": data.reason,
            "blocks": totals["blocks"],
            "subscribers": totals["subscribers"],
            "lines": totals["lines"],
        },
        event_type=STARTED_EVENT,
    )
    row = await repository.get(ctx.session, takeover["id"])
    assert row is not None
    return to_read(row)


async def get_visible(ctx: RequestContext, takeover_id: str) -> TakeoverRead:
    """Operator and regulator see every takeover; a partner sees the one its MVNO receives."""
    row = await repository.get(ctx.session, takeover_id)
    if row is None:
        raise NotFound.of("Takeover", takeover_id)
    ctx.principal.ensure_can_see(row["to_mvno_id"], "Takeover", takeover_id)
    return to_read(row)


async def list_for_mvno(ctx: RequestContext, mvno_id: str, *, limit: int = 20) -> list[TakeoverRead]:
    """The takeovers an MVNO exits by or receives, as ``get_visible`` would show each (a partner:
    the ones its MVNO receives)."""
    scope = ctx.principal.mvno_scope()
    rows = await repository.for_mvno(ctx.session, mvno_id, limit)
    return [to_read(row) for row in rows if scope is None or row["to_mvno_id"] == scope]


async def run_batch(ctx: RequestContext, takeover_id: str | None = None) -> str | None:
    """One batch of a running takeover (the given one, or any no worker holds), in the caller's
    transaction. Returns the takeover's id, or None when there was nothing to do."""
    row = await repository.next_running(ctx.session, takeover_id)
    if row is None:
        return None
    tid, source, target, phase = row["id"], row["from_mvno_id"], row["to_mvno_id"], row["phase"]
    audit: dict[str, object] = {"phase": phase}
    if phase == "blocks":
        prefixes = await repository.move_blocks(ctx.session, source, target, BLOCK_BATCH)
        audit |= {"blocks": len(prefixes), "prefixes": prefixes}
        done = len(prefixes) < BLOCK_BATCH
        await repository.advance(
            ctx.session,
            tid,
            ctx.now,
            blocks_moved=len(prefixes),
            **({"phase": "subscribers", "cursor": ""} if done else {"cursor": prefixes[-1]}),
        )
    elif phase == "subscribers":
        moved = await repository.move_subscribers(ctx.session, source, target, SUBSCRIBER_BATCH, ctx.now)
        audit |= {
            "subscribers": moved["subscribers"],
            "merged": moved["merged"],
            "lines": moved["lines"],
            "last_subscriber_id": moved["last_id"],
        }
        done = moved["subscribers"] < SUBSCRIBER_BATCH
        await repository.advance(
            ctx.session,
            tid,
            ctx.now,
            subscribers_moved=moved["subscribers"],
            subscribers_merged=moved["merged"],
            lines_moved=moved["lines"],
            **({"phase": "reservations", "cursor": ""} if done else {"cursor": moved["last_id"]}),
        )
    elif phase == "reservations":
        count = await repository.move_reservations(ctx.session, source, target, RESERVATION_BATCH)
        audit |= {"reservations": count}
        done = count < RESERVATION_BATCH
        await repository.advance(
            ctx.session, tid, ctx.now, reservations_moved=count, **({"phase": "finish"} if done else {})
        )
    else:
        await _finish(ctx, row)
        return str(tid)
    await record(
        ctx,
        action="takeover.batch",
        subject=Subject("takeover", tid),
        mvno_id=target,
        data=audit,
        event_type="takeover.progressed",
    )
    return str(tid)


async def _finish(ctx: RequestContext, row: RowMapping) -> None:
    tid, source, target = row["id"], row["from_mvno_id"], row["to_mvno_id"]
    # Subscribers registered at the exiting MVNO while the batches ran (it takes no new lines, but a
    # record may still be created), then rows that joined already-moved subscribers meanwhile.
    stragglers = 0
    while True:
        late = await repository.move_subscribers(ctx.session, source, target, SUBSCRIBER_BATCH, ctx.now)
        stragglers += late["subscribers"]
        if late["subscribers"] < SUBSCRIBER_BATCH:
            break
    stragglers += await repository.move_stragglers(ctx.session, source, target)
    exiting = await mvnos.get(ctx.session, source, lock="update")
    assert exiting is not None
    ensure_move(MvnoStatus(exiting.status), MvnoStatus.TERMINATED)
    await repository.set_mvno_status(
        ctx.session, source, MvnoStatus.TERMINATED.value, exiting.status_reason, ctx.now
    )
    await repository.advance(
        ctx.session, tid, ctx.now, phase="done", status="completed", completed_at=ctx.now
    )
    await record(
        ctx,
        action="mvno.terminated",
        subject=Subject("mvno", source),
        mvno_id=source,
        data={"from": MvnoStatus.EXITING.value, "to": MvnoStatus.TERMINATED.value, "takeover_id": tid},
        event_type="mvno.terminated",
    )
    final = await repository.get(ctx.session, tid)
    assert final is not None
    read = to_read(final)
    await record(
        ctx,
        action=COMPLETED_EVENT,
        subject=Subject("takeover", tid),
        mvno_id=target,
        data={
            "from_mvno_id": source,
            "to_mvno_id": target,
            "blocks": read.progress.blocks,
            "subscribers": read.progress.subscribers,
            "subscribers_merged": read.progress.subscribers_merged,
            "lines": read.progress.lines,
            "reservations": read.progress.reservations,
            "stragglers": stragglers,
            "batches": read.batches,
        },
        event_type=COMPLETED_EVENT,
    )
