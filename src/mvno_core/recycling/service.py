"""Recycling platforms (register, list, deactivate), reissue batch reads, and the CAMARA Number Recycling
check. Never commits: the request's transaction holds the change, its audit entry and its event."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row

from mvno_core.audit import journal
from mvno_core.audit.journal import Subject
from mvno_core.auth import service as key_service
from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import NotFound, ValidationFailed
from mvno_core.numbers import msisdn as msisdns
from mvno_core.recycling import repository
from mvno_core.recycling.errors import OperatorOrRegulatorOnly
from mvno_core.recycling.schemas import BatchRead, batch_to_read
from mvno_core.subscribers import pii
from mvno_core.webhooks import signing, urls

PLATFORM = "Recycling platform"
BATCH = "Recycling batch"


def secret_context(platform_id: str) -> str:
    """Associated data of a platform's sealed secret: a sealed value only opens for its own row."""
    return f"recycling_platform:{platform_id}:secret"


def ensure_operator_or_regulator(ctx: RequestContext) -> None:
    if ctx.principal.role not in (Role.OPERATOR, Role.REGULATOR):
        raise OperatorOrRegulatorOnly(
            "Recycling platforms and batches are for the operator and the regulator."
        )


async def register_platform(ctx: RequestContext, *, name: str, url: str) -> tuple[Row[Any], str]:
    """A new active platform and its signing secret (returned once, sealed at rest). It receives every
    batch formed from the next sweep on. Audit + event ``recycling_platform.registered``."""
    ctx.principal.ensure_operator()
    try:
        await urls.check_url(url, ctx.settings)
    except urls.UrlRefused as exc:
        raise ValidationFailed(str(exc), loc=("body", "url")) from exc
    platform_id = new_id("rcp")
    secret = signing.new_secret()
    sealed = pii.keyring(ctx.settings).encrypt(secret, context=secret_context(platform_id))
    row = await repository.insert_platform(
        ctx.session,
        platform_id=platform_id,
        name=name,
        url=url,
        sealed=sealed,
        now=ctx.now,
        key_id=ctx.principal.key_id,
    )
    await journal.record(
        ctx,
        action="recycling_platform.registered",
        subject=Subject("recycling_platform", platform_id),
        mvno_id=None,
        data={"name": name, "url": url},
        event_type="recycling_platform.registered",
    )
    return row, secret


async def get_platform(ctx: RequestContext, platform_id: str) -> Row[Any]:
    ensure_operator_or_regulator(ctx)
    row = await repository.get_platform(ctx.session, platform_id)
    if row is None:
        raise NotFound.of(PLATFORM, platform_id)
    return row


async def list_platforms(
    ctx: RequestContext, *, status: str | None, after_id: str | None, limit: int
) -> list[Row[Any]]:
    ensure_operator_or_regulator(ctx)
    return await repository.list_platforms(ctx.session, status=status, after_id=after_id, limit=limit)


async def deactivate_platform(ctx: RequestContext, platform_id: str) -> None:
    """Deactivate (the row stays: batches name it). Its pending deliveries are abandoned, so they hold
    no batch back, and its API keys are revoked (each an ``api_key.revoked`` entry). An already inactive
    platform: nothing changes, nothing is journaled. Audit + event ``recycling_platform.deactivated``."""
    ctx.principal.ensure_operator()
    row = await repository.get_platform(ctx.session, platform_id, lock=True)
    if row is None:
        raise NotFound.of(PLATFORM, platform_id)
    if row.status != "active":
        return
    abandoned = await repository.deactivate_platform(ctx.session, platform_id, ctx.now)
    # Its keys die with it: a platform no longer served may no longer call the check either.
    revoked = await key_service.revoke_platform_keys(ctx, platform_id)
    await journal.record(
        ctx,
        action="recycling_platform.deactivated",
        subject=Subject("recycling_platform", platform_id),
        mvno_id=None,
        data={"name": row.name, "deliveries_abandoned": abandoned, "keys_revoked": revoked},
        event_type="recycling_platform.deactivated",
    )


async def get_batch(ctx: RequestContext, batch_id: str) -> BatchRead:
    ensure_operator_or_regulator(ctx)
    row = await repository.get_batch(ctx.session, batch_id)
    if row is None:
        raise NotFound.of(BATCH, batch_id)
    return batch_to_read(row, await repository.deliveries_of(ctx.session, batch_id))


async def list_batches(
    ctx: RequestContext, *, status: str | None, before_id: str | None, limit: int
) -> list[Row[Any]]:
    ensure_operator_or_regulator(ctx)
    return await repository.list_batches(ctx.session, status=status, before_id=before_id, limit=limit)


def parse_specified_date(raw: str, today: date) -> date:
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(
            "specifiedDate is not a real calendar date.", loc=("body", "specifiedDate")
        ) from exc
    if day > today:
        raise ValidationFailed(
            "specifiedDate must not be after today (China time).", loc=("body", "specifiedDate")
        )
    return day


async def phone_number_changed(ctx: RequestContext, *, phone_number: str, specified_date: str) -> bool:
    """CAMARA Number Recycling: has the subscriber of the number changed after ``specified_date``?

    The date is a day in China time (UTC+8). True when the number's holder on that day is not its holder
    now:
    - it was cancelled on or after that day (whether or not it has been reissued since), or
    - nobody held it at the end of that day: its current line began after that day, or it has no line
      now (CAMARA: a date on which the number had no contract answers true).
    False when the line that holds it now already held it on that day (a line activated on that very day
    counts, as in CAMARA's example). A reclaim by the previous holder still answers true for dates before
    the cancellation (conservative: the platform re-checks the person).

    Operator and regulator: any number; a partner: its own MVNO's numbers (others are a 404, as unknown
    ones are).
    """
    today = ctx.now.astimezone(CHINA_TIME).date()
    day = parse_specified_date(specified_date, today)
    msisdn = msisdns.normalise(phone_number, loc=("body", "phoneNumber"))
    row = await repository.holder_history(ctx.session, msisdn)
    if row is None:
        raise NotFound.of("Number", msisdn)
    ctx.principal.ensure_can_see(row["mvno_id"], "Number", msisdn)
    day_start = datetime.combine(day, time.min, tzinfo=CHINA_TIME)
    day_end = day_start + timedelta(days=1)
    last_cancelled: datetime | None = row["last_cancelled_at"]
    if last_cancelled is not None and last_cancelled >= day_start:
        return True
    held_since: datetime | None = row["held_since"]
    return held_since is None or held_since >= day_end
