"""Cancellation from any province, and the month's inter-province settlement.

A cancellation locks the line, collects every blocker at once (``rules.blockers``), and then ends the line
through ``lines.service.end_line`` — the one way a line ends, so a cross-province cancellation has exactly
the outcome of a home one: line ``cancelled``, card counter down, number quarantined, ``line.cancelled``.
The refund is the balance; arrears paid at the counter settle the account. A cross-province one leaves a
settlement entry (home → requested) for the provinces to net at month end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import RowMapping

from mvno_core.audit.journal import Subject, record
from mvno_core.cancellations import repository, rules
from mvno_core.cancellations.errors import CancellationBlocked
from mvno_core.cancellations.schemas import (
    CancellationCreate,
    CancellationRead,
    SettlementNet,
    SettlementPair,
    SettlementRead,
)
from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import Forbidden, NotFound
from mvno_core.lines import holds
from mvno_core.lines import service as lines
from mvno_core.lines.lifecycle import EndReason, LineStatus, ensure_live
from mvno_core.lines.schemas import LineRead
from mvno_core.reference.data import province_name
from mvno_core.subscribers.lifecycle import RealNameStatus, VerificationResult

COMPLETED_EVENT = "cancellation.completed"


def to_read(row: RowMapping | dict[str, Any]) -> CancellationRead:
    return CancellationRead(
        id=row["id"],
        line_id=row["line_id"],
        msisdn=row["msisdn"],
        mvno_id=row["mvno_id"],
        status=row["status"],
        home_province=row["home_province"],
        home_province_name=province_name(row["home_province"]),
        requested_province=row["requested_province"],
        requested_province_name=province_name(row["requested_province"]),
        cross_province=row["cross_province"],
        refund_fen=row["refund_fen"],
        arrears_settled_fen=row["arrears_settled_fen"],
        penalty_accepted=row["penalty_accepted"],
        completed_at=row["completed_at"],
    )


async def cancel(ctx: RequestContext, line_id: str, data: CancellationCreate) -> CancellationRead:
    """Cancel a live line (201), or 409 ``cancellation_blocked`` listing every blocker at once."""
    line = await holds.line_for_update(ctx, line_id)
    ensure_live(LineStatus(line["status"]))
    facts = await repository.line_facts(ctx.session, line_id)
    found = _blockers(ctx, facts, line["arrears_fen"], line["contract_end"], data)
    if found:
        codes = ", ".join(blocker["code"] for blocker in found)
        raise CancellationBlocked(f"The line cannot be cancelled yet: {codes}.", blockers=found)

    home = facts["home_province"]
    cancellation = {
        "id": new_id("cnl"),
        "line_id": line_id,
        "msisdn": line["msisdn"],
        "mvno_id": line["mvno_id"],
        "subscriber_id": line["subscriber_id"],
        "status": "completed",
        "home_province": home,
        "requested_province": data.requested_province,
        "cross_province": home != data.requested_province,
        "refund_fen": line["balance_fen"],
        "arrears_settled_fen": line["arrears_fen"],
        # Only meaningful when a contract is still running; recorded as the subscriber's answer.
        "penalty_accepted": data.accept_contract_penalty,
        "identity_method": data.identity_check.method.value,
        "completed_at": ctx.now,
        "created_by_key_id": ctx.principal.key_id,
    }
    await repository.settle_account(ctx.session, line_id, ctx.now)
    await lines.end_line(ctx, line, EndReason.CANCELLED)
    await repository.insert(ctx.session, cancellation)
    if cancellation["cross_province"]:
        await repository.insert_settlement(
            ctx.session,
            {
                "id": new_id("stl"),
                "cancellation_id": cancellation["id"],
                "from_province": home,
                "to_province": data.requested_province,
                "refund_fen": cancellation["refund_fen"],
                "arrears_fen": cancellation["arrears_settled_fen"],
                "occurred_at": ctx.now,
            },
        )
    read = to_read(cancellation)
    await record(
        ctx,
        action=COMPLETED_EVENT,
        subject=Subject("cancellation", cancellation["id"]),
        mvno_id=line["mvno_id"],
        data=read.model_dump(mode="json", exclude={"home_province_name", "requested_province_name"}),
        event_type=COMPLETED_EVENT,
    )
    return read


def _blockers(
    ctx: RequestContext,
    facts: RowMapping,
    arrears_fen: int,
    contract_end: date | None,
    data: CancellationCreate | None,
) -> list[dict[str, Any]]:
    """``rules.blockers`` for this line; without a request (a preview), as if the counter's identity
    check passed, nothing were paid and no penalty accepted."""
    return rules.blockers(
        rules.LineFacts(
            identity_passed=data is None or data.identity_check.result is VerificationResult.PASSED,
            subscriber_verified=facts["real_name_status"] == RealNameStatus.VERIFIED,
            arrears_fen=arrears_fen,
            arrears_paid_fen=(data.arrears_paid_fen or 0) if data else 0,
            contract_end=contract_end,
            today_in_china=ctx.now.astimezone(CHINA_TIME).date(),
            accept_contract_penalty=data is not None and data.accept_contract_penalty,
            open_dispute_id=facts["open_dispute_id"],
        )
    )


async def standing_blockers(ctx: RequestContext, line: LineRead) -> tuple[str, list[dict[str, Any]]]:
    """A live line the caller may see, before anyone is at the counter: its home province and every
    blocker its records raise now, by ``cancel``'s own rules (the console shows them together ahead
    of the visit; ``cancel`` decides again, under the line's lock)."""
    facts = await repository.line_facts(ctx.session, line.id)
    found = _blockers(ctx, facts, line.account.arrears_fen, line.contract_end, None)
    return str(facts["home_province"]), found


async def get_visible(ctx: RequestContext, cancellation_id: str) -> CancellationRead:
    row = await repository.get(ctx.session, cancellation_id)
    if row is None:
        raise NotFound.of("Cancellation", cancellation_id)
    ctx.principal.ensure_can_see(row["mvno_id"], "Cancellation", cancellation_id)
    return to_read(row)


def month_window(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as a calendar month in China time (UTC+8), as ``[start, end)`` instants."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime.combine(date(year, number, 1), time.min, tzinfo=CHINA_TIME)
    following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return start, datetime.combine(following, time.min, tzinfo=CHINA_TIME)


async def settlement(ctx: RequestContext, month: str) -> SettlementRead:
    """Operator and regulator: the month's sums per ordered pair, and one net payment per pair."""
    if ctx.principal.role is Role.PARTNER:
        raise Forbidden("Settlements between provinces are the operator's and regulator's.")
    starts_at, ends_at = month_window(month)
    rows = await repository.settlement_pairs(ctx.session, starts_at, ends_at)
    pairs = [
        rules.PairSum(
            from_province=row["from_province"],
            to_province=row["to_province"],
            entries=row["entries"],
            refund_fen=row["refund_fen"],
            arrears_fen=row["arrears_fen"],
        )
        for row in rows
    ]
    return SettlementRead(
        month=month,
        timezone="+08:00",
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        pairs=[
            SettlementPair(
                from_province=pair.from_province,
                to_province=pair.to_province,
                entries=pair.entries,
                refund_fen=pair.refund_fen,
                arrears_fen=pair.arrears_fen,
            )
            for pair in pairs
        ],
        net=[
            SettlementNet(
                payer_province=p.payer_province, payee_province=p.payee_province, amount_fen=p.amount_fen
            )
            for p in rules.net(pairs)
        ],
    )


async def ids_for_lines(ctx: RequestContext, line_ids: list[str]) -> list[str]:
    """Ids of these lines' cancellations (one per line at most), for their history."""
    return await repository.ids_for_lines(ctx.session, line_ids)
