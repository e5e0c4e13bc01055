"""Activation: the hot path of the whole service, one statement.

Every gate, the card counter, the number's move, the line, the reservation it consumes, the audit
entry, the event and the Idempotency-Key record are pieces of one data-modifying statement; each piece
runs only on the rows the one before it produced. A partner's activation with an Idempotency-Key costs
the key's lock and lookup, this statement and COMMIT. When nothing was activated, the statement's
answer says which gate stopped it, and a read-only follow-up (the failure path only) gives the details.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NoReturn

from mvno_core.audit import journal
from mvno_core.audit.journal import Subject, record
from mvno_core.blocks.errors import HostMismatch
from mvno_core.kernel.clock import rfc3339
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.lean import Decline, LeanCall
from mvno_core.kernel.problems import (
    Conflict,
    DomainError,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.statements import Piece
from mvno_core.lines import end_users, profiles, repository, statements
from mvno_core.lines.errors import CardLimitReached, RealNameUnverified
from mvno_core.lines.lifecycle import MNCS_BY_HOST, LineStatus
from mvno_core.lines.profiles import ProfileRules
from mvno_core.lines.schemas import AccountRead, LineCreate, LineRead
from mvno_core.mvnos import service as mvnos
from mvno_core.mvnos import statements as mvno_gates
from mvno_core.mvnos.lifecycle import MvnoStatus, ensure_takes_new_business
from mvno_core.numbers import msisdn as msisdns
from mvno_core.numbers import repository as numbers
from mvno_core.numbers import statements as number_moves
from mvno_core.numbers.errors import NumberUnavailable
from mvno_core.numbers.grading import Grade
from mvno_core.reservations import statements as reservation_rows

ACTIVATED_EVENT = "line.activated"


def hosts_of_imsi(imsi: str) -> frozenset[str]:
    """The hosts whose MNC the IMSI carries (``460`` + MNC); 422 ``host_mismatch`` if none."""
    mnc = imsi[3:5]
    hosts = frozenset(host for host, mncs in MNCS_BY_HOST.items() if mnc in mncs)
    if not hosts:
        raise HostMismatch(f"IMSI MNC {mnc} belongs to no host operator (CMCC, CUCC, CTCC).")
    return hosts


async def _target_mvno(ctx: RequestContext, subscriber_id: str) -> str:
    """A partner activates for its own MVNO (the subscriber must be one of its own); the operator's
    activation follows the subscriber (one read, off the partners' hot path)."""
    scope = ctx.principal.mvno_scope()
    if scope is not None:
        return scope
    row = await repository.subscriber_facts(ctx.session, subscriber_id, ctx.now)
    if row is None:
        raise NotFound.of("Subscriber", subscriber_id)
    return str(row["mvno_id"])


async def activate(ctx: RequestContext, data: LineCreate) -> Reply:
    """Activate a line: 201 with it, or the code of the first gate that refused.

    Gates: MVNO active (``mvno_not_active``); the profile's rules met (an IMEI where the SIM is locked
    to a device, an enterprise's end user where the profile asks for one: 422); subscriber verified
    with no overdue re-verification (``real_name_unverified``); fewer than the profile's ``card_cap``
    live lines of its cap class for this ID at this MVNO (``card_limit_reached``: concurrent
    activations for one ID serialise on the subscriber's row, then a conditional upsert of the class
    counter); the number claimable by this MVNO or reserved by it
    (``number_unavailable``; the reservation is consumed); IMSI MNC of the number's host
    (``host_mismatch``); premium numbers need ``contract_end`` (422); ICCID and IMSI unique among live
    lines (``conflict``). One live line per number is also a unique index.
    """
    msisdn = msisdns.normalise(data.msisdn, loc=("body", "msisdn"))
    hosts = hosts_of_imsi(data.imsi)
    rules = await profiles.rules(ctx.session, data.profile, data.general_data)
    if rules is None:
        raise _unknown_profile(data)
    if data.end_user is not None:
        checked = end_users.checked(ctx, data.end_user, loc=("body", "end_user"))
        data = data.model_copy(update={"end_user": checked})
    mvno_id = await _target_mvno(ctx, data.subscriber_id)
    line_id = new_id("lin")
    read = line_read(data, msisdn=msisdn, mvno_id=mvno_id, line_id=line_id, now=ctx.now, rules=rules)
    reply = _reply(read)
    pieces = activation_pieces(ctx, data, read, hosts, reply)
    row = await repository.activate(ctx.session, pieces)
    if row["line_id"] is None:
        await _explain_refusal(ctx, row, data, msisdn, mvno_id, hosts)
    if row["lapsed_id"] is not None:
        # The number's earlier reservation had lapsed: its expiry is told first, then the activation.
        await record(
            ctx,
            action="reservation.expired",
            subject=Subject("reservation", row["lapsed_id"]),
            mvno_id=row["lapsed_mvno_id"],
            data={"msisdn": msisdn, "expires_at": rfc3339(row["lapsed_expires_at"])},
            event_type="reservation.expired",
        )
        await record(ctx, **_activated_entry(read, data))
    return reply


async def activate_in_lane(call: LeanCall, data: LineCreate) -> Reply:
    """A partner's activation in the lean lane (kernel/lean.py): the same pieces as ``activate``, one
    statement with the Idempotency-Key check joined. Anything but a plain success declines (nothing is
    committed) and the full stack answers it: a refused gate's details, a lapsed reservation's expiry
    record and every error stay on one code path."""
    ctx = call.ctx
    mvno_id = ctx.principal.mvno_scope()
    if mvno_id is None:
        raise Decline("the operator's activation reads the subscriber's MVNO first")
    if data.end_user is not None:
        raise Decline("an enterprise's end user is checked and sealed by the full stack")
    rules = profiles.cached(data.profile, data.general_data)
    if rules is None:
        raise Decline("the profile is not in this process's copy of the table (yet)")
    try:
        msisdn = msisdns.normalise(data.msisdn, loc=("body", "msisdn"))
        hosts = hosts_of_imsi(data.imsi)
    except DomainError as exc:
        raise Decline(exc.code) from exc
    read = line_read(data, msisdn=msisdn, mvno_id=mvno_id, line_id=new_id("lin"), now=ctx.now, rules=rules)
    reply = _reply(read)
    await repository.activate_in_lane(call, activation_pieces(ctx, data, read, hosts, reply))
    return reply


def _unknown_profile(data: LineCreate) -> ValidationFailed:
    return ValidationFailed(
        f"No line profile {data.profile!r} with general_data={str(data.general_data).lower()} "
        "(GET /v1/line-profiles lists them).",
        loc=("body", "general_data" if data.general_data else "profile"),
    )


def _reply(read: LineRead) -> Reply:
    return Reply.of(read, 201, {"Location": f"/v1/lines/{read.id}"})


def line_read(
    data: LineCreate, *, msisdn: str, mvno_id: str, line_id: str, now: datetime, rules: ProfileRules
) -> LineRead:
    """The new line as the response shows it: everything is known before the statement runs (the
    profile's ``rules`` from ``profiles.rules``; the statement checks the table still says so)."""
    return new_line_read(
        line_id=line_id,
        msisdn=msisdn,
        subscriber_id=data.subscriber_id,
        mvno_id=mvno_id,
        iccid=data.iccid,
        imsi=data.imsi,
        plan_code=data.plan_code,
        contract_end=data.contract_end,
        imei=data.imei,
        now=now,
        rules=rules,
    )


def new_line_read(
    *,
    line_id: str,
    msisdn: str,
    subscriber_id: str,
    mvno_id: str,
    iccid: str,
    imsi: str,
    plan_code: str | None,
    contract_end: date | None,
    imei: str | None,
    now: datetime,
    rules: ProfileRules,
) -> LineRead:
    """A line just made active (by an activation or a reclaim), with its profile's flags."""
    return LineRead(
        id=line_id,
        msisdn=msisdn,
        subscriber_id=subscriber_id,
        mvno_id=mvno_id,
        status=LineStatus.ACTIVE,
        iccid=iccid,
        imsi=imsi,
        plan_code=plan_code,
        contract_end=contract_end,
        activated_at=now,
        ended_at=None,
        end_reason=None,
        open_holds=[],
        account=AccountRead(balance_fen=0, arrears_fen=0, overdue_since=None, updated_at=None),
        profile=rules.profile,
        general_data=rules.general_data,
        voice_enabled=rules.voice_enabled,
        sms_enabled=rules.sms_enabled,
        data_cap_mb=rules.data_cap_mb,
        imei=imei,
    )


def activation_pieces(
    ctx: RequestContext, data: LineCreate, read: LineRead, hosts: frozenset[str], reply: Reply | None = None
) -> list[Piece]:
    """The activation statement's pieces, in order, for the line ``read`` will show (also what the
    benchmark's raw-SQL limit runs)."""
    msisdn, mvno_id, line_id = read.msisdn, read.mvno_id, read.id
    return [
        mvno_gates.takes_new_business(name="mvno", mvno_id=mvno_id),
        statements.line_profile(
            name="profile",
            profile=read.profile,
            general_data=read.general_data,
            voice_enabled=read.voice_enabled,
            sms_enabled=read.sms_enabled,
            data_cap_mb=read.data_cap_mb,
            subscriber_id=data.subscriber_id,
            imei_given=data.imei is not None,
            end_user_given=data.end_user is not None,
            gate="mvno",
        ),
        *statements.take_card_slot(
            name="slot", subscriber_id=data.subscriber_id, mvno_id=mvno_id, profile="profile", now=ctx.now
        ),
        *number_moves.activate(
            name="claimed",
            msisdn=msisdn,
            mvno_id=mvno_id,
            line_id=line_id,
            now=ctx.now,
            hosts=hosts,
            premium_allowed=data.contract_end is not None,
            reservation_id=data.reservation_id,
            gate="slot",
        ),
        statements.insert_line(
            name="line",
            claimed="claimed",
            profile="profile",
            line_id=line_id,
            subscriber_id=data.subscriber_id,
            mvno_id=mvno_id,
            iccid=data.iccid,
            imsi=data.imsi,
            plan_code=data.plan_code,
            contract_end=data.contract_end,
            imei=data.imei,
            now=ctx.now,
            key_id=ctx.principal.key_id,
        ),
        *(
            [
                end_users.insert_piece(
                    name="end_user",
                    line="line",
                    sealed=end_users.seal(ctx, data.end_user),
                    now=ctx.now,
                    key_id=ctx.principal.key_id,
                )
            ]
            if data.end_user is not None
            else []
        ),
        reservation_rows.consume(name="consumed", source="claimed", now=ctx.now),
        reservation_rows.end_lapsed(name="lapsed", source="claimed"),
        *journal.pieces(
            ctx,
            name="journal",
            only_if="EXISTS (SELECT 1 FROM line) AND NOT EXISTS (SELECT 1 FROM lapsed)",
            **_activated_entry(read, data),
        ),
        *ctx.idempotency_pieces(reply or _reply(read), only_if="EXISTS (SELECT 1 FROM line)"),
    ]


def _activated_entry(line: LineRead, request: LineCreate) -> dict[str, Any]:
    data: dict[str, Any] = {
        "line_id": line.id,
        "msisdn": line.msisdn,
        "subscriber_id": line.subscriber_id,
        "iccid": line.iccid,
        "imsi": line.imsi,
        "plan_code": line.plan_code,
        "contract_end": line.contract_end.isoformat() if line.contract_end else None,
        "profile": line.profile,
        "general_data": line.general_data,
        "imei": line.imei,
    }
    if request.reservation_id is not None:
        data["reservation_id"] = request.reservation_id
    if request.end_user is not None:
        data["end_user"] = end_users.masked(request.end_user)
    return {
        "action": ACTIVATED_EVENT,
        "subject": Subject("line", line.id),
        "mvno_id": line.mvno_id,
        "data": data,
        "event_type": ACTIVATED_EVENT,
    }


async def _explain_refusal(
    ctx: RequestContext,
    row: Any,
    data: LineCreate,
    msisdn: str,
    mvno_id: str,
    hosts: frozenset[str],
) -> NoReturn:
    """Nothing was activated: the counts of the statement's gates say where it stopped."""
    if not row["mvno_ok"]:
        mvno = await mvnos.get_visible(ctx, mvno_id)
        ensure_takes_new_business(MvnoStatus(mvno.status))
    elif not row["profile_ok"]:
        await _explain_profile(ctx, data, mvno_id)
    elif not row["slot_ok"]:
        await _explain_subscriber(ctx, data.subscriber_id, mvno_id, data.profile, data.general_data)
    elif not row["number_ok"]:
        await _explain_number(ctx, data, msisdn, mvno_id, hosts)
    else:
        holder = await repository.live_line_holding(
            ctx.session, iccid=data.iccid, imsi=data.imsi, msisdn=msisdn, imei=data.imei
        )
        if holder is not None:
            raise Conflict(f"The {holder['clash']} is on a live line already.", existing_id=holder["id"])
    raise ServiceUnavailable("A concurrent change interfered; retry the request.")


async def _explain_profile(ctx: RequestContext, data: LineCreate, mvno_id: str) -> NoReturn:
    """The profile's row refused: which of its rules the request missed (read fresh from the table)."""
    rules = await profiles.fresh(ctx.session, data.profile, data.general_data)
    if rules is None:
        raise _unknown_profile(data)
    facts = await repository.subscriber_facts(ctx.session, data.subscriber_id, ctx.now)
    if facts is None or facts["mvno_id"] != mvno_id:
        raise NotFound.of("Subscriber", data.subscriber_id)
    if rules.imei_required and data.imei is None:
        raise ValidationFailed(
            f"The {rules.profile} profile locks the SIM to a device: imei is required.", loc=("body", "imei")
        )
    enterprise = facts["kind"] == "enterprise"
    if enterprise and rules.end_user_required and data.end_user is None:
        raise ValidationFailed(
            f"An enterprise's {rules.profile} card needs its end user registered (Anti-Telecom-Fraud Law "
            "art. 12).",
            loc=("body", "end_user"),
        )
    if not enterprise and data.end_user is not None:
        raise ValidationFailed(
            "Only enterprise subscribers register an end user; an individual is the user.",
            loc=("body", "end_user"),
        )
    # The rules changed since this process read them: the copy is fresh now, a retry uses it.
    raise ServiceUnavailable("The line profile changed meanwhile; retry the request.")


async def _explain_subscriber(
    ctx: RequestContext, subscriber_id: str, mvno_id: str, profile: str, general_data: bool
) -> NoReturn:
    facts = await repository.subscriber_facts(ctx.session, subscriber_id, ctx.now)
    if facts is None or facts["mvno_id"] != mvno_id:
        raise NotFound.of("Subscriber", subscriber_id)
    if facts["real_name_status"] != "verified":
        raise RealNameUnverified("The subscriber has no passed verification (先实名后开通).")
    if facts["reverification_overdue"]:
        raise RealNameUnverified("The subscriber's re-verification is overdue.")
    rules = await profiles.fresh(ctx.session, profile, general_data)
    if rules is not None:
        raise card_limit(rules, await repository.card_slot_count(ctx.session, subscriber_id, rules.cap_class))
    raise ServiceUnavailable("A concurrent change interfered; retry the request.")


def card_limit(rules: ProfileRules, current: int) -> CardLimitReached:
    """``card_limit_reached`` for the profile's cap class (also the reclaim's)."""
    return CardLimitReached(
        f"This ID already holds {current} live {rules.cap_class} lines at this MVNO "
        f"(limit {rules.card_cap} for {rules.profile} lines"
        f"{' with general data' if rules.general_data else ''}).",
        limit=rules.card_cap,
        current=current,
    )


async def _explain_number(
    ctx: RequestContext, data: LineCreate, msisdn: str, mvno_id: str, hosts: frozenset[str]
) -> NoReturn:
    number = await numbers.get(ctx.session, msisdn, ctx.now)
    if number is None or number["mvno_id"] != mvno_id:
        raise NumberUnavailable(f"Number {msisdn} is not in this MVNO's blocks.")
    if number["host"] not in hosts:
        raise HostMismatch(
            f"The IMSI's MNC belongs to {sorted(hosts)}; number {msisdn} is hosted by {number['host']}."
        )
    if number["grade"] == Grade.PREMIUM and data.contract_end is None:
        raise ValidationFailed(
            "A premium number needs contract_end (its minimum-spend contract).", loc=("body", "contract_end")
        )
    raise NumberUnavailable(f"Number {msisdn} cannot be activated by this MVNO now ({number['status']}).")
