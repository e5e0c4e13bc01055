"""MVNO registry use cases. Each locks what it changes, writes audit + event, and never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import Conflict, NotFound, ValidationFailed
from mvno_core.mvnos import repository
from mvno_core.mvnos.lifecycle import MvnoStatus, ensure_move
from mvno_core.mvnos.models import Mvno
from mvno_core.mvnos.schemas import MvnoCreate, MvnoRead, MvnoUpdate, to_read


def _snapshot(mvno: Mvno) -> dict[str, Any]:
    return {
        "code": mvno.code,
        "name": mvno.name,
        "hosts": list(mvno.hosts),
        "licensed_provinces": list(mvno.licensed_provinces),
        "status": mvno.status,
    }


async def _load(ctx: RequestContext, mvno_id: str, *, lock: str | None = None) -> Mvno:
    ctx.principal.ensure_can_see(mvno_id, "MVNO", mvno_id)
    mvno = await repository.get(ctx.session, mvno_id, lock=lock)
    if mvno is None:
        raise NotFound.of("MVNO", mvno_id)
    return mvno


async def get_visible(ctx: RequestContext, mvno_id: str, *, lock: str | None = None) -> MvnoRead:
    """The MVNO if this caller may see it; 404 otherwise (partners see only their own). ``lock`` as in
    ``repository.get``: held until the caller's transaction ends."""
    return to_read(await _load(ctx, mvno_id, lock=lock))


async def create(ctx: RequestContext, data: MvnoCreate) -> MvnoRead:
    ctx.principal.ensure_operator()
    mvno = Mvno(
        id=new_id("mvno"),
        code=data.code,
        name=data.name,
        legal_name=data.legal_name,
        license_no=data.license_no,
        hosts=[h.value for h in data.hosts],
        licensed_provinces=list(data.licensed_provinces),
        status=MvnoStatus.ACTIVE.value,
        status_reason=None,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    # A savepoint, so a duplicate code becomes a clean 409 with the existing id.
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(mvno)
    except IntegrityError as exc:
        existing = await repository.id_by_code(ctx.session, data.code)
        raise Conflict(f"MVNO code {data.code!r} is taken.", existing_id=existing) from exc
    await record(
        ctx,
        action="mvno.created",
        subject=Subject("mvno", mvno.id),
        mvno_id=mvno.id,
        data=_snapshot(mvno),
        event_type="mvno.created",
    )
    return to_read(mvno)


async def update(ctx: RequestContext, mvno_id: str, data: MvnoUpdate) -> MvnoRead:
    mvno = await _load(ctx, mvno_id, lock="update")
    ctx.principal.ensure_operator()
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        return to_read(mvno)  # nothing asked, nothing changed, nothing to audit
    if "hosts" in changes:
        missing = set(mvno.hosts) - {h.value for h in data.hosts or []}
        if missing:
            raise ValidationFailed(
                f"Hosts can only be added; {sorted(missing)} would be removed.",
                loc=("body", "hosts"),
            )
        mvno.hosts = sorted({*mvno.hosts, *(h.value for h in data.hosts or [])})
    if "licensed_provinces" in changes:
        wanted = set(data.licensed_provinces or [])
        stranded = await repository.provinces_with_blocks(ctx.session, mvno.id) - wanted
        if stranded:
            raise Conflict(f"Provinces {sorted(stranded)} still hold this MVNO's blocks; they stay licensed.")
        mvno.licensed_provinces = sorted(wanted)
    if "name" in changes:
        mvno.name = changes["name"]
    if "legal_name" in changes:
        mvno.legal_name = changes["legal_name"]
    mvno.updated_at = ctx.now
    await ctx.session.flush()
    await record(
        ctx,
        action="mvno.updated",
        subject=Subject("mvno", mvno.id),
        mvno_id=mvno.id,
        data={"changed": sorted(changes), **_snapshot(mvno)},
        event_type="mvno.updated",
    )
    return to_read(mvno)


async def _move(
    ctx: RequestContext,
    mvno_id: str,
    target: MvnoStatus,
    *,
    reason: str | None,
    action: str,
    note: str | None = None,
) -> MvnoRead:
    mvno = await _load(ctx, mvno_id, lock="update")
    ctx.principal.ensure_operator()
    current = MvnoStatus(mvno.status)
    mvno.status = ensure_move(current, target).value
    mvno.status_reason = reason
    mvno.updated_at = ctx.now
    await ctx.session.flush()
    await record(
        ctx,
        action=action,
        subject=Subject("mvno", mvno.id),
        mvno_id=mvno.id,
        data={
            "from": current.value,
            "to": target.value,
            "reason": reason,
            **({"note": note} if note else {}),
        },
        event_type=action,
    )
    return to_read(mvno)


async def restrict(ctx: RequestContext, mvno_id: str, reason: str) -> MvnoRead:
    """Regulator-ordered rectification: no new blocks, reservations or activations."""
    return await _move(ctx, mvno_id, MvnoStatus.RESTRICTED, reason=reason, action="mvno.restricted")


async def reinstate(ctx: RequestContext, mvno_id: str, *, note: str | None = None) -> MvnoRead:
    """Lift a restriction; the optional note goes to the audit entry and the event."""
    return await _move(ctx, mvno_id, MvnoStatus.ACTIVE, reason=None, action="mvno.reinstated", note=note)


async def list_visible(ctx: RequestContext, *, after_id: str | None, limit: int) -> list[MvnoRead]:
    rows = await repository.list_page(
        ctx.session, only_id=ctx.principal.mvno_scope(), after_id=after_id, limit=limit
    )
    return [to_read(mvno) for mvno in rows]
