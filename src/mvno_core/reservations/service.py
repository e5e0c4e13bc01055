"""Reservations: take a number (a given one, or any matching one), release it, let it lapse.

Each write is one statement built of pieces: the MVNO gate (``mvnos.statements``), the number's move
(``numbers.statements``, the only writer of ``numbers``), the reservation row, the lapsed reservation the
claim ended, and, where the response is known before the statement runs, the audit entry, the event and
the Idempotency-Key record. A specific-number reservation with an Idempotency-Key therefore costs three
round trips: the key's lock and lookup, this statement, COMMIT.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from sqlalchemy import RowMapping

from mvno_core.audit import journal
from mvno_core.audit.journal import Subject, record, record_many
from mvno_core.kernel.clock import rfc3339
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import NotFound, ValidationFailed
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.statements import Piece
from mvno_core.mvnos import service as mvnos
from mvno_core.mvnos import statements as mvno_gates
from mvno_core.mvnos.lifecycle import MvnoStatus, ensure_takes_new_business
from mvno_core.numbers import msisdn as msisdns
from mvno_core.numbers import patterns
from mvno_core.numbers import repository as numbers
from mvno_core.numbers import statements as number_moves
from mvno_core.numbers.errors import NumberUnavailable
from mvno_core.reservations import repository, statements
from mvno_core.reservations.lifecycle import ReservationStatus, effective_status, ensure_move
from mvno_core.reservations.schemas import ReservationCreate, ReservationRead, to_read

RESERVED_EVENT = "number.reserved"
EXPIRED_EVENT = "reservation.expired"


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


async def reserve(ctx: RequestContext, data: ReservationCreate) -> Reply:
    """Reserve a number for ``ttl_seconds``; 201 with the reservation.

    Gates, all inside the claim statement: the MVNO is active (read ``FOR KEY SHARE``, so a concurrent
    restriction waits for this claim and claims never wait for each other), the number is in an active
    block of that MVNO and claimable now. When nothing was claimed, a read-only follow-up says which
    gate failed: 404 (MVNO unknown to the caller), ``mvno_not_active`` or ``number_unavailable``.
    A claimed number whose earlier reservation had lapsed ends that reservation in the same statement,
    and ``reservation.expired`` is journalled before ``number.reserved``.
    """
    # "" is a given (and invalid) msisdn, not a request for any number.
    msisdn = msisdns.normalise(data.msisdn, loc=("body", "msisdn")) if data.msisdn is not None else None
    mvno_id = await _target_mvno(ctx, data, msisdn)
    ttl = data.ttl_seconds or ctx.settings.reservation_default_ttl_seconds
    reservation_id = new_id("rsv")
    expires_at = ctx.now + timedelta(seconds=ttl)

    pieces: list[Piece] = [mvno_gates.takes_new_business(name="mvno", mvno_id=mvno_id)]
    if msisdn is not None:
        pieces += number_moves.claim_specific(
            name="claimed",
            msisdn=msisdn,
            mvno_id=mvno_id,
            reservation_id=reservation_id,
            reserved_until=expires_at,
            now=ctx.now,
            gate="mvno",
        )
    else:
        query = _criteria_query(data, mvno_id)
        if query.pattern is not None:
            await numbers.plan_per_pattern(ctx.session)
        pieces += number_moves.claim_any(
            name="claimed",
            query=query,
            reservation_id=reservation_id,
            reserved_until=expires_at,
            now=ctx.now,
            gate="mvno",
        )
    pieces += [
        statements.create(
            name="reservation",
            claimed="claimed",
            reservation_id=reservation_id,
            mvno_id=mvno_id,
            now=ctx.now,
            expires_at=expires_at,
            key_id=ctx.principal.key_id,
        ),
        statements.end_lapsed(name="lapsed", source="claimed"),
    ]
    known_reply: Reply | None = None
    if msisdn is not None:
        # Everything the response says is known before the claim runs: journal it and store it for
        # replay in the claim's own statement (only if the claim took a number no reservation held).
        known_reply = _reply(
            ReservationRead(
                id=reservation_id,
                msisdn=msisdn,
                mvno_id=mvno_id,
                status=ReservationStatus.ACTIVE.value,
                created_at=ctx.now,
                expires_at=expires_at,
                ended_at=None,
            )
        )
        pieces += journal.pieces(
            ctx,
            name="journal",
            only_if="EXISTS (SELECT 1 FROM claimed WHERE lapsed_reservation_id IS NULL)",
            **_reserved_entry(reservation_id, msisdn, mvno_id, expires_at, ttl),
        )
        pieces += ctx.idempotency_pieces(known_reply, only_if="EXISTS (SELECT 1 FROM reservation)")

    row = await repository.claim(ctx.session, pieces)
    if row is None:
        await _explain_unclaimed(ctx, mvno_id, msisdn)
    if row["lapsed_id"] is not None:
        await record(
            ctx,
            action=EXPIRED_EVENT,
            subject=Subject("reservation", row["lapsed_id"]),
            mvno_id=row["lapsed_mvno_id"],
            data={"msisdn": row["msisdn"], "expires_at": rfc3339(row["lapsed_expires_at"])},
            event_type=EXPIRED_EVENT,
        )
    if known_reply is None or row["lapsed_id"] is not None:
        await record(ctx, **_reserved_entry(row["id"], row["msisdn"], mvno_id, row["expires_at"], ttl))
    return known_reply or _reply(to_read(row, ctx.now))


def _reply(reservation: ReservationRead) -> Reply:
    return Reply.of(reservation, 201, {"Location": f"/v1/reservations/{reservation.id}"})


def _reserved_entry(
    reservation_id: str, msisdn: str, mvno_id: str, expires_at: Any, ttl: int
) -> dict[str, Any]:
    """The audit entry and ``number.reserved`` event of a new reservation."""
    return {
        "action": "reservation.created",
        "subject": Subject("reservation", reservation_id),
        "mvno_id": mvno_id,
        "data": {"msisdn": msisdn, "expires_at": rfc3339(expires_at), "ttl_seconds": ttl},
        "event_type": RESERVED_EVENT,
        "event_data": {
            "reservation_id": reservation_id,
            "msisdn": msisdn,
            "expires_at": rfc3339(expires_at),
        },
    }


def _criteria_query(data: ReservationCreate, mvno_id: str) -> numbers.NumberQuery:
    criteria = data.criteria
    assert criteria is not None  # the schema requires msisdn or criteria
    return numbers.NumberQuery(
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


async def _explain_unclaimed(ctx: RequestContext, mvno_id: str, msisdn: str | None) -> NoReturn:
    """The claim took nothing: say which gate stopped it (read-only; the failure path only)."""
    mvno = await mvnos.get_visible(ctx, mvno_id)
    ensure_takes_new_business(MvnoStatus(mvno.status))
    if msisdn is not None:
        raise NumberUnavailable(f"Number {msisdn} cannot be reserved by this MVNO now.")
    raise NumberUnavailable("No available number of this MVNO matches the criteria.")


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
    if status in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
        return  # already over: a retried DELETE changes nothing
    ensure_move(status, ReservationStatus.RELEASED)  # a consumed one cannot be released
    await repository.release(
        ctx.session,
        [
            number_moves.release_reservation(
                name="freed", reservation_id=reservation_id, msisdn=row["msisdn"]
            ),
            statements.release(name="released", reservation_id=reservation_id, now=ctx.now),
            *journal.pieces(
                ctx,
                name="journal",
                only_if="TRUE",
                action="reservation.released",
                subject=Subject("reservation", reservation_id),
                mvno_id=row["mvno_id"],
                data={"msisdn": row["msisdn"]},
                event_type="reservation.released",
            ),
        ],
    )


async def expire_due(ctx: RequestContext, *, batch: int = 1000) -> int:
    """Sweeper step: free up to ``batch`` numbers whose reservation lapsed, end those reservations and
    journal each, in one transaction. Driven by the numbers (locked ``SKIP LOCKED``), so an expiry is
    written only for a reservation that still held its number, and never after a claim took it."""
    rows = await repository.expire(
        ctx.session,
        [
            *number_moves.expire_lapsed(name="freed", now=ctx.now, batch=batch),
            statements.end_lapsed(name="expired", source="freed", column="reservation_id"),
        ],
    )
    await record_many(
        ctx,
        [
            (
                EXPIRED_EVENT,
                Subject("reservation", r["id"]),
                r["mvno_id"],
                {"msisdn": r["msisdn"], "expires_at": rfc3339(r["expires_at"])},
            )
            for r in rows
        ],
        event_type=EXPIRED_EVENT,
    )
    return len(rows)


async def ids_for_number(ctx: RequestContext, msisdn: str, *, limit: int = 50) -> list[str]:
    """Ids of the number's newest reservations, for its history (the history's read applies the
    caller's scope to what it shows)."""
    return await repository.ids_for_number(ctx.session, msisdn, limit)
