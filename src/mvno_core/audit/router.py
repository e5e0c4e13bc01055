from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import RowMapping

from mvno_core.audit import service
from mvno_core.audit.checkpoints import Anchor, AuditKeyring
from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import (
    PROBLEM_RESPONSES,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
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


class AnchorRead(BaseModel):
    length: int
    head_hash: str


class VerificationRead(BaseModel):
    ok: bool
    checked: int
    first_broken_seq: int | None
    first_missing_seq: int | None
    pending: int
    length: int
    head_hash: str
    full: bool
    checked_against: list[AnchorRead]
    # What else is wrong, e.g. the checkpoint file kept outside the database fails its signature.
    alarms: list[str]


class CheckpointRead(BaseModel):
    length: int
    head_hash: str
    signed_at: datetime
    key_id: str
    signature: str
    public_key: str


class VerifyBusy(ServiceUnavailable):
    retry_after_seconds: ClassVar[int | None] = 2


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


@router.get("/checkpoints/latest", summary="The latest signed checkpoint of the audit chain")
async def latest_checkpoint(ctx: Ctx, request: Request) -> CheckpointRead:
    if ctx.principal.is_partner:
        raise Forbidden("Checkpoints of the platform-wide chain are for the operator and the regulator.")
    keyring: AuditKeyring = request.app.state.audit_keyring
    try:
        latest = keyring.latest()
    except ValueError as exc:
        raise Conflict(
            "The checkpoint kept outside the database is unreadable or not signed by our key."
        ) from exc
    if latest is None:
        raise NotFound("No checkpoint has been signed yet.")
    return CheckpointRead(
        length=latest.length,
        head_hash=latest.head_hash,
        signed_at=latest.signed_at,
        key_id=latest.key_id,
        signature=latest.signature,
        public_key=keyring.public_key_b64,
    )


@router.get("/verify", summary="Link pending entries, then verify the chain against its signed checkpoints")
async def verify_audit(
    ctx: Ctx,
    request: Request,
    full: Annotated[bool, Query(description="Re-walk the whole chain (one at a time)")] = False,
    length: Annotated[
        int | None, Query(ge=1, lt=2**63, description="A checkpoint you kept: its length")
    ] = None,
    head_hash: Annotated[
        str | None, Query(pattern="^[0-9a-f]{64}$", description="… and its head_hash")
    ] = None,
) -> VerificationRead:
    if ctx.principal.is_partner:
        raise Forbidden("Verifying the platform-wide chain is for the operator and the regulator.")
    if (length is None) != (head_hash is None):
        raise ValidationFailed("Give length and head_hash together.", loc=("query", "length"))
    state = request.app.state
    # One verification at a time, and nobody waits for it while holding a pooled connection: a second
    # request is answered 503 + Retry-After at once (a queue of waiters once drained the pool).
    lock: asyncio.Lock = state.verify_lock
    if lock.locked():
        raise VerifyBusy("A verification is already running; retry shortly.")
    async with lock:
        kept = Anchor(length, head_hash) if length is not None and head_hash is not None else None
        result = await service.verify_anchored(
            ctx.session,
            state.db,
            state.audit_keyring,
            state.clock,
            full=full,
            kept=kept,
            batch=ctx.settings.audit_sequencer_batch,
        )
        if result is None:
            raise VerifyBusy("A full verification is already running elsewhere; retry later.")
    return VerificationRead(
        ok=result.ok,
        checked=result.checked,
        first_broken_seq=result.first_broken_seq,
        first_missing_seq=result.first_missing_seq,
        pending=result.pending,
        length=result.length,
        head_hash=result.head_hash,
        full=result.full,
        checked_against=[AnchorRead(length=a.length, head_hash=a.head_hash) for a in result.anchors_checked],
        alarms=result.alarms,
    )
