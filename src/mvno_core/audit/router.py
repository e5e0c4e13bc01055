from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import RowMapping

from mvno_core.audit import sequencer, service
from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES, Forbidden
from mvno_core.kernel.routing import ApiRoute, Ctx

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


class AuditActor(BaseModel):
    key_id: str
    role: str
    mvno_id: str | None


class AuditSubject(BaseModel):
    kind: str
    id: str


class AuditEntryRead(BaseModel):
    id: str
    seq: int | None  # None while the entry waits for the sequencer (pending)
    at: datetime
    actor: AuditActor
    action: str
    subject: AuditSubject
    mvno_id: str | None
    request_id: str | None
    data: dict[str, Any]
    hash: str | None
    prev_hash: str | None


class VerificationRead(BaseModel):
    ok: bool
    checked: int
    first_broken_seq: int | None
    pending: int


def to_read(row: RowMapping) -> AuditEntryRead:
    return AuditEntryRead(
        id=row["id"],
        seq=row["chain_pos"],
        at=row["recorded_at"],
        actor=AuditActor(key_id=row["actor_key_id"], role=row["actor_role"], mvno_id=row["actor_mvno_id"]),
        action=row["action"],
        subject=AuditSubject(kind=row["subject_kind"], id=row["subject_id"]),
        mvno_id=row["mvno_id"],
        request_id=row["request_id"],
        data=row["data"],
        hash=row["chain_hash"],
        prev_hash=row["prev_hash"],
    )


@router.get("", summary="Audit entries (partners see their MVNO's)")
async def list_audit(
    ctx: Ctx,
    subject_kind: Annotated[str | None, Query(max_length=32)] = None,
    subject_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AuditEntryRead]:
    after = decode_cursor(cursor, str)
    rows = await service.list_entries(
        ctx,
        subject_kind=subject_kind,
        subject_id=subject_id,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    return page_of([to_read(r) for r in rows], limit, key=lambda entry: entry.id)


@router.get("/verify", summary="Link pending entries, then verify the whole hash chain")
async def verify_audit(ctx: Ctx, request: Request) -> VerificationRead:
    if ctx.principal.is_partner:
        raise Forbidden("Verifying the platform-wide chain is for the operator and the regulator.")
    # One verification at a time: each links pending rows on a second connection and walks the chain,
    # so letting them run in parallel would only multiply the work and the connections held.
    async with request.app.state.verify_lock:
        await sequencer.link_pending(request.app.state.db, ctx.settings.audit_sequencer_batch)
        result = await service.verify(ctx.session)
    return VerificationRead(
        ok=result.ok,
        checked=result.checked,
        first_broken_seq=result.first_broken_seq,
        pending=result.pending,
    )
