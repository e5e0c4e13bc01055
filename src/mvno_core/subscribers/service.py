"""Subscriber use cases: register a person or enterprise, record verifications, search and 一证通查.

Every mutation writes its audit entry and event in the caller's transaction and never commits. Names
and ID numbers are encrypted before they reach SQL and appear in audit entries, events and responses
only masked; the plaintext lives in this module's locals for the length of one request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from sqlalchemy import RowMapping

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import Conflict, NotFound, ValidationFailed
from mvno_core.mvnos import service as mvnos
from mvno_core.subscribers import idcheck, pii, repository
from mvno_core.subscribers.idcheck import IdType
from mvno_core.subscribers.lifecycle import (
    RealNameStatus,
    SubscriberKind,
    VerificationResult,
    id_type_fits,
    method_fits,
    status_after,
)
from mvno_core.subscribers.schemas import (
    IdentityLookupRead,
    IdentityQuery,
    LookupLine,
    MvnoCount,
    SubscriberCreate,
    VerificationCreate,
)


def _today(ctx: RequestContext) -> date:
    """Birth dates are days in China time: someone born today in Beijing is not "in the future"."""
    return ctx.now.astimezone(CHINA_TIME).date()


def _checked_id(ctx: RequestContext, id_type: IdType, id_number: str) -> str:
    try:
        return idcheck.check(id_type, id_number, today=_today(ctx))
    except idcheck.IdNumberInvalid as exc:
        raise ValidationFailed(str(exc), loc=("body", "id_number")) from exc


def _masked(row: RowMapping) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "id_type": row["id_type"],
        "name_masked": row["name_masked"],
        "id_number_masked": row["id_number_masked"],
    }


async def _target_mvno(ctx: RequestContext, requested: str | None) -> str:
    """Partners register for their own MVNO (implied; another MVNO's id is a 404); the operator names one."""
    scope = ctx.principal.mvno_scope()
    if scope is not None:
        if requested is not None and requested != scope:
            raise NotFound.of("MVNO", requested)
        return scope
    if requested is None:
        raise ValidationFailed("The operator must give mvno_id.", loc=("body", "mvno_id"))
    return requested


async def create(ctx: RequestContext, data: SubscriberCreate) -> RowMapping:
    """Register a subscriber (``unverified``) for one MVNO.

    One per (MVNO, ID): the unique index decides, and a duplicate — including one created by a
    concurrent request a moment earlier — is 409 ``conflict`` with ``existing_id``. Writes the row, the
    audit entry and ``subscriber.created`` (masked data only) in the caller's transaction.
    """
    if not id_type_fits(data.kind, data.id_type):
        expected = "business_license" if data.kind is SubscriberKind.ENTERPRISE else "a personal document"
        raise ValidationFailed(
            f"A {data.kind} subscriber registers with {expected}.", loc=("body", "id_type")
        )
    id_number = _checked_id(ctx, data.id_type, data.id_number)
    mvno_id = await _target_mvno(ctx, data.mvno_id)
    await mvnos.get_visible(ctx, mvno_id, lock="key_share")

    ring = pii.keyring(ctx.settings)
    subscriber_id = new_id("sub")
    blind_index = ring.blind_index(data.id_type.value, id_number)
    row = await repository.insert(
        ctx.session,
        {
            "id": subscriber_id,
            "mvno_id": mvno_id,
            "kind": data.kind.value,
            "id_type": data.id_type.value,
            "name_ciphertext": ring.encrypt(data.name, context=f"subscriber:{subscriber_id}:name"),
            "id_number_ciphertext": ring.encrypt(id_number, context=f"subscriber:{subscriber_id}:id_number"),
            "id_blind_index": blind_index,
            "name_masked": pii.mask_name(data.name),
            "id_number_masked": pii.mask_id_number(id_number),
            "now": ctx.now,
            "key_id": ctx.principal.key_id,
        },
    )
    if row is None:
        existing = await repository.find_id(
            ctx.session, mvno_id=mvno_id, id_type=data.id_type.value, blind_index=blind_index
        )
        raise Conflict("This ID is already a subscriber of this MVNO.", existing_id=existing)
    await record(
        ctx,
        action="subscriber.created",
        subject=Subject("subscriber", subscriber_id),
        mvno_id=mvno_id,
        data=_masked(row),
        event_type="subscriber.created",
    )
    return row


async def get_visible(ctx: RequestContext, subscriber_id: str, *, lock: bool = False) -> RowMapping:
    """The subscriber if this caller may see it; another MVNO's is the same 404 as a missing one."""
    row = await repository.get(ctx.session, subscriber_id, lock=lock)
    # A takeover merged this record into the receiver's record of the same person: the old id
    # resolves to that record (a few hops at most, one per takeover it went through).
    for _ in range(8):
        if row is None or row["merged_into"] is None:
            break
        row = await repository.get(ctx.session, row["merged_into"], lock=lock)
    if row is None:
        raise NotFound.of("Subscriber", subscriber_id)
    ctx.principal.ensure_can_see(row["mvno_id"], "Subscriber", subscriber_id)
    return row


# Later stages react to a passed verification (lines: pending re-verification requests are satisfied and
# their holds lifted). They register here, so that subscribers never import them.
AfterVerified = Callable[[RequestContext, str], Awaitable[None]]
after_passed_verification: list[AfterVerified] = []


async def record_verification(
    ctx: RequestContext, subscriber_id: str, data: VerificationCreate
) -> RowMapping:
    """Record a verification; a ``passed`` one makes the subscriber ``verified``.

    Locks the subscriber row (``FOR NO KEY UPDATE``: it does not block lines referencing it) so
    concurrent verifications apply in order. Audits every verification; emits ``subscriber.verified``
    for every passed one (``status_changed`` says whether it was the first).
    """
    subscriber = await get_visible(ctx, subscriber_id, lock=True)
    kind = SubscriberKind(subscriber["kind"])
    if not method_fits(kind, data.method):
        raise ValidationFailed(
            f"Method {data.method} does not apply to a {kind} subscriber.", loc=("body", "method")
        )
    current = RealNameStatus(subscriber["real_name_status"])
    new_status = status_after(current, data.result)
    row = await repository.record_verification(
        ctx.session,
        {
            "id": new_id("ver"),
            "subscriber_id": subscriber_id,
            "mvno_id": subscriber["mvno_id"],
            "method": data.method.value,
            "result": data.result.value,
            "score": data.score,
            "channel": data.channel,
            "evidence_ref": data.evidence_ref,
            "now": ctx.now,
            "key_id": ctx.principal.key_id,
        },
        new_status=new_status.value,
        status_changed=new_status is not current,
    )
    facts = {
        "verification_id": row["id"],
        "method": data.method.value,
        "result": data.result.value,
        "channel": data.channel,
        "real_name_status": new_status.value,
        "status_changed": new_status is not current,
    }
    await record(
        ctx,
        action="subscriber.verification_recorded",
        subject=Subject("subscriber", subscriber_id),
        mvno_id=subscriber["mvno_id"],
        data={**facts, "score": data.score, "evidence_ref": data.evidence_ref},
        event_type="subscriber.verified"
        if data.result is VerificationResult.PASSED
        else "subscriber.verification_failed",
        event_data=facts,
    )
    if data.result is VerificationResult.PASSED:
        for hook in after_passed_verification:
            await hook(ctx, subscriber_id)
    return row


async def list_verifications(
    ctx: RequestContext, subscriber_id: str, *, after_id: str | None, limit: int
) -> list[RowMapping]:
    await get_visible(ctx, subscriber_id)
    return await repository.list_verifications(ctx.session, subscriber_id, after_id=after_id, limit=limit)


async def _audit_identity_read(
    ctx: RequestContext, action: str, query: IdentityQuery, id_number: str, found: int
) -> None:
    """Who looked up which ID, and when: a read of personal data is itself recorded (masked)."""
    await record(
        ctx,
        action=action,
        subject=Subject("identity_query", new_id("idq")),
        mvno_id=ctx.principal.mvno_scope(),
        data={
            "id_type": query.id_type.value,
            "id_number_masked": pii.mask_id_number(id_number),
            "found": found,
        },
    )


async def search(ctx: RequestContext, query: IdentityQuery) -> list[RowMapping]:
    """Subscribers with this ID in the caller's scope (a partner: its own MVNO only)."""
    id_number = _checked_id(ctx, query.id_type, query.id_number)
    ring = pii.keyring(ctx.settings)
    rows = await repository.search(
        ctx.session,
        blind_index=ring.blind_index(query.id_type.value, id_number),
        id_type=query.id_type.value,
        mvno_id=ctx.principal.mvno_scope(),
    )
    await _audit_identity_read(ctx, "subscriber.searched", query, id_number, len(rows))
    return rows


async def identity_lookup(ctx: RequestContext, query: IdentityQuery) -> IdentityLookupRead:
    """一证通查: where this ID holds lines, per MVNO (operator and regulator: all MVNOs; a partner: its
    own). One indexed statement; ``count`` is each subscriber's live-lines counter."""
    id_number = _checked_id(ctx, query.id_type, query.id_number)
    ring = pii.keyring(ctx.settings)
    rows = await repository.identity_lookup(
        ctx.session,
        blind_index=ring.blind_index(query.id_type.value, id_number),
        id_type=query.id_type.value,
        mvno_id=ctx.principal.mvno_scope(),
    )
    by_mvno = [MvnoCount(mvno_id=r["mvno_id"], mvno_name=r["mvno_name"], count=r["count"]) for r in rows]
    lines = [
        LookupLine(
            line_id=line["line_id"],
            msisdn_masked=pii.mask_msisdn(line["msisdn"]),
            mvno_name=r["mvno_name"],
            status=line["status"],
            activated_at=line["activated_at"],
        )
        for r in rows
        for line in r["lines"]
    ]
    await _audit_identity_read(ctx, "identity.looked_up", query, id_number, len(by_mvno))
    return IdentityLookupRead(total=sum(m.count for m in by_mvno), by_mvno=by_mvno, lines=lines)
