"""Reclaim: during quarantine the previous holder — the same person, i.e. the same ID type and blind
index — may take the number back as a new line, at whichever MVNO holds the number's block now (after a
takeover, the receiver). Anyone else gets 409 ``number_unavailable``.

The number row is locked first, so the checks that decide who may reclaim hold until commit; the new line
then goes in as one statement with the activation's own pieces (MVNO gate, card slot, line, journal,
Idempotency-Key record), so the card cap and the ICCID/IMSI rules are exactly the activation's.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import text

from mvno_core.audit import journal
from mvno_core.audit.journal import Subject
from mvno_core.blocks.errors import HostMismatch
from mvno_core.cancellations.schemas import ReclaimCreate
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import Conflict, NotFound, ServiceUnavailable
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.statements import Piece, run
from mvno_core.lines import profiles
from mvno_core.lines import repository as lines
from mvno_core.lines import statements as line_rows
from mvno_core.lines.activation import card_limit, hosts_of_imsi, new_line_read
from mvno_core.lines.errors import RealNameUnverified
from mvno_core.mvnos import statements as mvno_gates
from mvno_core.mvnos.errors import MvnoNotActive
from mvno_core.numbers import msisdn as msisdns
from mvno_core.numbers import statements as number_moves
from mvno_core.numbers.errors import NumberUnavailable

RECLAIM_ACTION = "line.reclaimed"
ACTIVATED_EVENT = "line.activated"

_NUMBER_AND_PREVIOUS_HOLDER = text(
    "SELECT n.msisdn, n.status, n.quarantine_until, n.line_id AS previous_line_id, b.mvno_id, b.host, "
    "ps.id_type AS previous_id_type, ps.id_blind_index AS previous_blind_index "
    "FROM numbers n JOIN blocks b ON b.prefix = n.block_prefix "
    "LEFT JOIN lines pl ON pl.id = n.line_id LEFT JOIN subscribers ps ON ps.id = pl.subscriber_id "
    "WHERE n.msisdn = :msisdn FOR UPDATE OF n"
)
_SUBSCRIBER = text(
    "SELECT id, mvno_id, id_type, id_blind_index, real_name_status, live_lines FROM subscribers "
    "WHERE id = :id"
)


async def reclaim(ctx: RequestContext, raw_msisdn: str, data: ReclaimCreate) -> Reply:
    msisdn = msisdns.normalise(raw_msisdn, loc=("path", "msisdn"))
    hosts = hosts_of_imsi(data.imsi)
    number = (await ctx.session.execute(_NUMBER_AND_PREVIOUS_HOLDER, {"msisdn": msisdn})).first()
    if number is None:
        raise NotFound.of("Number", msisdn)
    ctx.principal.ensure_can_see(number.mvno_id, "Number", msisdn)
    subscriber = (await ctx.session.execute(_SUBSCRIBER, {"id": data.subscriber_id})).first()
    if subscriber is None:
        raise NotFound.of("Subscriber", data.subscriber_id)
    ctx.principal.ensure_can_see(subscriber.mvno_id, "Subscriber", data.subscriber_id)
    same_person = subscriber.id_type == number.previous_id_type and bytes(subscriber.id_blind_index) == bytes(
        number.previous_blind_index or b""
    )
    if (
        number.status != "quarantined"
        or number.quarantine_until is None
        or number.quarantine_until <= ctx.now
        or not same_person
        or subscriber.mvno_id != number.mvno_id
    ):
        raise NumberUnavailable(
            f"Number {msisdn} can only be reclaimed by its previous holder during quarantine."
        )
    if number.host not in hosts:
        raise HostMismatch(
            f"The IMSI's MNC belongs to {sorted(hosts)}; number {msisdn} is hosted by {number.host}."
        )

    mvno_id = number.mvno_id
    # A reclaimed number comes back as a line of the default profile (the body names none).
    rules = await profiles.rules(ctx.session, profiles.DEFAULT_PROFILE, False)
    if rules is None:
        raise ServiceUnavailable(f"The {profiles.DEFAULT_PROFILE} line profile is missing.")
    line_id = new_id("lin")
    read = new_line_read(
        line_id=line_id,
        msisdn=msisdn,
        subscriber_id=subscriber.id,
        mvno_id=mvno_id,
        iccid=data.iccid,
        imsi=data.imsi,
        plan_code=None,
        contract_end=None,
        imei=None,
        now=ctx.now,
        rules=rules,
    )
    reply = Reply.of(read, 201, {"Location": f"/v1/lines/{line_id}"})
    entry: dict[str, Any] = {
        "line_id": line_id,
        "msisdn": msisdn,
        "subscriber_id": subscriber.id,
        "iccid": data.iccid,
        "imsi": data.imsi,
        "reclaimed_from_line_id": number.previous_line_id,
    }
    pieces: list[Piece] = [
        mvno_gates.takes_new_business(name="mvno", mvno_id=mvno_id),
        line_rows.line_profile(
            name="profile",
            profile=rules.profile,
            general_data=rules.general_data,
            voice_enabled=rules.voice_enabled,
            sms_enabled=rules.sms_enabled,
            data_cap_mb=rules.data_cap_mb,
            subscriber_id=subscriber.id,
            imei_given=False,
            end_user_given=False,
            gate="mvno",
        ),
        *line_rows.take_card_slot(
            name="slot", subscriber_id=subscriber.id, mvno_id=mvno_id, profile="profile", now=ctx.now
        ),
        number_moves.reclaim(name="reclaimed", msisdn=msisdn, line_id=line_id, now=ctx.now, gate="slot"),
        line_rows.insert_line(
            name="line",
            claimed="reclaimed",
            profile="profile",
            line_id=line_id,
            subscriber_id=subscriber.id,
            mvno_id=mvno_id,
            iccid=data.iccid,
            imsi=data.imsi,
            plan_code=None,
            contract_end=None,
            imei=None,
            now=ctx.now,
            key_id=ctx.principal.key_id,
        ),
        *journal.pieces(
            ctx,
            name="journal",
            action=RECLAIM_ACTION,
            subject=Subject("line", line_id),
            mvno_id=mvno_id,
            data=entry,
            only_if="EXISTS (SELECT 1 FROM line)",
            event_type=ACTIVATED_EVENT,
        ),
        *ctx.idempotency_pieces(reply, only_if="EXISTS (SELECT 1 FROM line)"),
    ]
    row = await run(
        ctx.session,
        pieces,
        "SELECT (SELECT id FROM line) AS line_id, (SELECT count(*) FROM mvno) AS mvno_ok, "
        "(SELECT count(*) FROM profile) AS profile_ok, (SELECT count(*) FROM slot) AS slot_ok",
    )
    assert row is not None
    if row["line_id"] is None:
        await _explain(ctx, row, subscriber, data, msisdn, rules)
    return reply


async def _explain(
    ctx: RequestContext,
    row: Any,
    subscriber: Any,
    data: ReclaimCreate,
    msisdn: str,
    rules: profiles.ProfileRules,
) -> NoReturn:
    if not row["mvno_ok"]:
        raise MvnoNotActive("The MVNO holding this number cannot take on lines now.")
    if not row["profile_ok"]:
        await profiles.fresh(ctx.session, rules.profile, rules.general_data)
        raise ServiceUnavailable("The line profile changed meanwhile; retry the request.")
    if not row["slot_ok"]:
        facts = await lines.subscriber_facts(ctx.session, subscriber.id, ctx.now)
        assert facts is not None
        if facts["real_name_status"] != "verified" or facts["reverification_overdue"]:
            raise RealNameUnverified("The subscriber has no passed verification, or owes a re-verification.")
        fresh = await profiles.fresh(ctx.session, rules.profile, rules.general_data) or rules
        raise card_limit(fresh, await lines.card_slot_count(ctx.session, subscriber.id, fresh.cap_class))
    holder = await lines.live_line_holding(ctx.session, iccid=data.iccid, imsi=data.imsi, msisdn=msisdn)
    if holder is not None:
        raise Conflict(f"The {holder['clash']} is on a live line already.", existing_id=holder["id"])
    raise ServiceUnavailable("A concurrent change interfered; retry the request.")
