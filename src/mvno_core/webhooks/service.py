"""Webhook endpoints: register, list, delete, rotate the secret; the delivery log. Never commits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Row, text

from mvno_core.audit import journal
from mvno_core.audit.journal import Subject
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import NotFound, ValidationFailed
from mvno_core.subscribers import pii
from mvno_core.webhooks import signing, urls

KIND = "Webhook endpoint"
_COLUMNS = (
    "id, mvno_id, url, types, status, disabled_at, disabled_reason, failing_since, next_attempt_at, "
    "previous_secret_until, created_at"
)


def _subject(endpoint_id: str) -> Subject:
    return Subject("webhook_endpoint", endpoint_id)


async def create(
    ctx: RequestContext, *, url: str, types: list[str] | None, mvno_id: str | None
) -> tuple[Row[Any], str]:
    principal = ctx.principal
    if principal.is_partner:
        if mvno_id is not None:
            principal.ensure_can_see(mvno_id, "MVNO", mvno_id)
        mvno_id = principal.mvno_id
    elif mvno_id is not None:
        exists = await ctx.session.scalar(text("SELECT 1 FROM mvnos WHERE id = :id"), {"id": mvno_id})
        if exists is None:
            raise NotFound.of("MVNO", mvno_id)
    try:
        await urls.check_url(url, ctx.settings)
    except urls.UrlRefused as exc:
        raise ValidationFailed(str(exc), loc=("body", "url")) from exc
    endpoint_id = new_id("whe")
    secret = signing.new_secret()
    sealed = signing.seal(pii.keyring(ctx.settings), endpoint_id, secret)
    wanted = sorted(set(types)) if types is not None else None
    # The cursor starts at the feed's current head: an endpoint receives what happens after it exists.
    # Events committed but not yet positioned get positions above it, so they are delivered too.
    row = (
        await ctx.session.execute(
            text(
                "INSERT INTO webhook_endpoints (id, mvno_id, url, types, secret_sealed, status, cursor, "
                "created_at, created_by_key_id) SELECT :id, :mvno_id, :url, :types, :sealed, 'enabled', "
                "coalesce(max(position), 0), :now, :key_id FROM events WHERE position IS NOT NULL "
                f"RETURNING {_COLUMNS}"
            ),
            {
                "id": endpoint_id,
                "mvno_id": mvno_id,
                "url": url,
                "types": wanted,
                "sealed": sealed,
                "now": ctx.now,
                "key_id": principal.key_id,
            },
        )
    ).one()
    data = {"url": url, "types": wanted}
    await journal.record(
        ctx,
        action="webhook_endpoint.create",
        subject=_subject(endpoint_id),
        mvno_id=mvno_id,
        data=data,
        event_type="webhook_endpoint.created",
    )
    return row, secret


async def get(ctx: RequestContext, endpoint_id: str, *, lock: bool = False) -> Row[Any]:
    row = (
        await ctx.session.execute(
            text(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = :id{' FOR UPDATE' if lock else ''}"),
            {"id": endpoint_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFound.of(KIND, endpoint_id)
    # An operator endpoint (no MVNO) is invisible to partners, like another MVNO's.
    ctx.principal.ensure_can_see(row.mvno_id, KIND, endpoint_id)
    return row


async def list_endpoints(
    ctx: RequestContext, *, mvno_id: str | None, after_id: str | None, limit: int
) -> list[Row[Any]]:
    visible, scope = ctx.principal.narrow(mvno_id)
    if not visible:
        return []
    clauses = ["(CAST(:after AS text) IS NULL OR id > :after)"]
    if scope is not None:
        clauses.append("mvno_id = :mvno_id")
    result = await ctx.session.execute(
        text(
            f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE {' AND '.join(clauses)} ORDER BY id LIMIT :limit"
        ),
        {"after": after_id, "mvno_id": scope, "limit": limit},
    )
    return list(result)


async def delete(ctx: RequestContext, endpoint_id: str) -> None:
    row = await get(ctx, endpoint_id, lock=True)
    # The delivery log goes with it (ON DELETE CASCADE); the audit trail keeps the endpoint's history.
    await ctx.session.execute(text("DELETE FROM webhook_endpoints WHERE id = :id"), {"id": endpoint_id})
    await journal.record(
        ctx,
        action="webhook_endpoint.delete",
        subject=_subject(endpoint_id),
        mvno_id=row.mvno_id,
        data={"url": row.url},
        event_type="webhook_endpoint.deleted",
    )


async def rotate_secret(ctx: RequestContext, endpoint_id: str) -> tuple[Row[Any], str]:
    """A new secret, shown once. The current one keeps signing (as a second signature) for
    ``webhook_secret_grace_hours``, so receivers can switch without losing deliveries."""
    await get(ctx, endpoint_id, lock=True)
    secret = signing.new_secret()
    sealed = signing.seal(pii.keyring(ctx.settings), endpoint_id, secret)
    grace_until = ctx.now + timedelta(hours=ctx.settings.webhook_secret_grace_hours)
    row = (
        await ctx.session.execute(
            text(
                "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, "
                "previous_secret_until = :until, secret_sealed = :sealed WHERE id = :id "
                f"RETURNING {_COLUMNS}"
            ),
            {"id": endpoint_id, "sealed": sealed, "until": grace_until},
        )
    ).one()
    await journal.record(
        ctx,
        action="webhook_endpoint.rotate_secret",
        subject=_subject(endpoint_id),
        mvno_id=row.mvno_id,
        data={"previous_secret_valid_until": grace_until.isoformat()},
        event_type="webhook_endpoint.secret_rotated",
    )
    return row, secret


async def deliveries(
    ctx: RequestContext, endpoint_id: str, *, before_id: int | None, limit: int
) -> list[Row[Any]]:
    """Delivery attempts, newest first."""
    await get(ctx, endpoint_id)
    result = await ctx.session.execute(
        text(
            "SELECT id, event_id, event_type, attempt, attempted_at, status_code, error, succeeded, "
            "duration_ms FROM webhook_deliveries WHERE endpoint_id = :endpoint_id "
            "AND (CAST(:before AS bigint) IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit"
        ),
        {"endpoint_id": endpoint_id, "before": before_id, "limit": limit},
    )
    return list(result)
