"""Reservations: take a number (a given one, or any matching one), release it, let it lapse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import RowMapping

from mvno_core.audit.journal import Subject, record, record_many
from mvno_core.kernel.clock import rfc3339
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import IllegalTransition, NotFound, ValidationFailed
from mvno_core.mvnos import service as mvnos
from mvno_core.mvnos.lifecycle import MvnoStatus, ensure_takes_new_business
from mvno_core.numbers import msisdn as msisdns
from mvno_core.numbers import patterns
from mvno_core.numbers import repository as numbers
from mvno_core.numbers.errors import NumberUnavailable
from mvno_core.reservations import repository
from mvno_core.reservations.lifecycle import ReservationStatus, effective_status
from mvno_core.reservations.schemas import ReservationCreate, ReservationRead


def to_read(row: RowMapping, ctx: RequestContext) -> ReservationRead:
    return ReservationRead(
        id=row["id"],
        msisdn=row["msisdn"],
        mvno_id=row["mvno_id"],
        status=effective_status(row["status"], row["expires_at"], ctx.now).value,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        ended_at=row["ended_at"],
    )


async def _target_mvno(ctx: RequestContext, data: ReservationCreate, msisdn: str | None) -> str:
    """Partners reserve for their own MVNO (implied); the operator names one, or it follows the number."""
    scope = ctx.principal.mvno_scope()
    if scope is not None:
        if data.mvno_id is not None and data.mvno_id != scope:
            raise NotFound.of("MVNO", data.mvno_id)
        return scope
    if data.mvno_id is not None:
        return data.mvno_id
    if msisdn is not None:
        row = await numbers.get(ctx.session, msisdn, ctx.now)
        if row is None:
            raise NumberUnavailable(f"Number {msisdn} is not in any allocated block.")
        return str(row["mvno_id"])
    raise ValidationFailed("The operator must give mvno_id with criteria.", loc=("body", "mvno_id"))


async def reserve(ctx: RequestContext, data: ReservationCreate) -> ReservationRead:
    """Reserve a number for ``ttl_seconds``.

    The MVNO must be active (``mvno_not_active``); its row is read ``FOR KEY SHARE`` (the lock the
    reservation's foreign key takes anyway), so a concurrent restriction waits for this reservation and
    reservations never queue on each other. Writes the reservation, the audit entry and
    ``number.reserved`` in one transaction; 409 ``number_unavailable`` if nothing can be claimed.
    """
    msisdn = msisdns.normalise(data.msisdn, loc=("body", "msisdn")) if data.msisdn else None
    mvno_id = await _target_mvno(ctx, data, msisdn)
    mvno = await mvnos.get_visible(ctx, mvno_id, lock="key_share")
    ensure_takes_new_business(MvnoStatus(mvno.status))

    ttl = data.ttl_seconds or ctx.settings.reservation_default_ttl_seconds
    params: dict[str, Any] = {
        "rid": new_id("rsv"),
        "mvno_id": mvno_id,
        "now": ctx.now,
        "expires_at": ctx.now + timedelta(seconds=ttl),
        "key_id": ctx.principal.key_id,
    }
    if msisdn is not None:
        row = await repository.claim_specific(ctx.session, msisdn=msisdn, params=params)
        if row is None:
            raise NumberUnavailable(f"Number {msisdn} cannot be reserved by this MVNO now.")
    else:
        criteria = data.criteria
        assert criteria is not None
        query = numbers.NumberQuery(
            mvno_id=mvno_id,
            status="available",
            province=criteria.province,
            segment=criteria.segment,
            grade=criteria.grade.value if criteria.grade else None,
            pattern=(
                patterns.parse(criteria.pattern, loc=("body", "criteria", "pattern"))
                if criteria.pattern is not None
                else None
            ),
            active_blocks_only=True,
        )
        if query.pattern is not None:
            await numbers.plan_per_pattern(ctx.session)
        row = await repository.claim_any(ctx.session, query, params)
        if row is None:
            raise NumberUnavailable("No available number of this MVNO matches the criteria.")

    await record(
        ctx,
        action="reservation.created",
        subject=Subject("reservation", row["id"]),
        mvno_id=mvno_id,
        data={
            "msisdn": row["msisdn"],
            "expires_at": rfc3339(row["expires_at"]),
            "ttl_seconds": ttl,
        },
        event_type="number.reserved",
        event_data={
            "reservation_id": row["id"],
            "msisdn": row["msisdn"],
            "expires_at": rfc3339(row["expires_at"]),
        },
    )
    return to_read(row, ctx)


async def get_visible(ctx: RequestContext, reservation_id: str, *, lock: bool = False) -> RowMapping:
    row = await repository.get(ctx.session, reservation_id, lock=lock)
    if row is None:
        raise NotFound.of("Reservation", reservation_id)
    ctx.principal.ensure_can_see(row["mvno_id"], "Reservation", reservation_id)
    return row


async def release(ctx: RequestContext, reservation_id: str) -> None:
    """Release an active reservation: its number is available at once.

    Releasing one that already ended (released or expired) changes nothing: a retried DELETE succeeds.
    A consumed reservation (its number was activated) cannot be released: ``illegal_transition``.
    """
    row = await get_visible(ctx, reservation_id, lock=True)
    status = effective_status(row["status"], row["expires_at"], ctx.now)
    if status is ReservationStatus.CONSUMED:
        raise IllegalTransition("The reservation was used for an activation.", current_status=status.value)
    if status is not ReservationStatus.ACTIVE:
        return
    await repository.release(ctx.session, reservation_id, ctx.now)
    await record(
        ctx,
        action="reservation.released",
        subject=Subject("reservation", reservation_id),
        mvno_id=row["mvno_id"],
        data={"msisdn": row["msisdn"]},
        event_type="reservation.released",
    )


async def expire_due(ctx: RequestContext, *, batch: int = 1000) -> int:
    """Sweeper step: mark lapsed reservations expired, free their numbers, audit each. One batch."""
    rows = await repository.expire_due(ctx.session, ctx.now, batch)
    await record_many(
        ctx,
        [
            (
                "reservation.expired",
                Subject("reservation", r["id"]),
                r["mvno_id"],
                {"msisdn": r["msisdn"], "expires_at": rfc3339(r["expires_at"])},
            )
            for r in rows
        ],
        event_type="reservation.expired",
    )
    return len(rows)
