"""Delivers events to webhook endpoints: at least once, in feed order, one event in flight per endpoint.

Each endpoint has its own cursor over the event feed, stored on its row. The feed hands out gap-free
positions in the order events became visible (``events/sequencer.py``), so a cursor never passes an
event that commits later. The cursor moves only after the receiver answered 2xx and that is committed:
a worker killed between reading an event and recording the answer leaves the cursor where it was, and
the next run sends the same event again with the same ``webhook-id`` (the event id), which receivers use
to drop duplicates.

Several workers (server processes, ``mvno-core sweep``) share the work through a lease on the endpoint
row (``leased_until``), committed before anything is sent: one worker per endpoint at a time, and a
crashed worker's endpoints are taken over when its lease runs out. An endpoint's events go one at a
time, in order; a failure stops that endpoint (later events wait) until its retry is due. Retries back
off exponentially with jitter; an endpoint that has failed without a success for
``webhook_disable_after_hours`` is disabled, with the reason recorded and a ``webhook_endpoint.disabled``
event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import RowMapping, text

from mvno_core import __version__
from mvno_core.audit import journal
from mvno_core.audit.journal import Subject
from mvno_core.kernel.clock import Clock
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.principal import SYSTEM
from mvno_core.subscribers import pii
from mvno_core.webhooks import signing, urls

log = logging.getLogger(__name__)

# Events sent per endpoint per pass, so one busy endpoint does not keep a pass going for ever.
EVENTS_PER_PASS = 200
_ERROR_MAX = 500


@dataclass(slots=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    disabled: int = 0


def _lease(settings: Settings) -> timedelta:
    # Long enough for one send and its bookkeeping; renewed after every delivered event.
    return timedelta(seconds=2 * settings.webhook_timeout_seconds + 30)


def backoff_seconds(failed_attempts: int, settings: Settings) -> float:
    """Exponential from ``webhook_retry_first_seconds``, capped, with jitter (half to all of the step),
    so endpoints that failed together do not all retry in the same instant."""
    first, cap = settings.webhook_retry_first_seconds, settings.webhook_retry_max_seconds
    step = min(cap, first * 2.0 ** min(failed_attempts - 1, 60))
    return float(step * random.uniform(0.5, 1.0))


def payload(event: RowMapping) -> bytes:
    """The body: Standard Webhooks' ``{type, timestamp, data}``, ``data`` being the feed's event."""
    document = {
        "type": event["type"],
        "timestamp": event["occurred_at"].isoformat(),
        "data": {
            "id": event["id"],
            "type": event["type"],
            "occurred_at": event["occurred_at"].isoformat(),
            "mvno_id": event["mvno_id"],
            "subject": {"kind": event["subject_kind"], "id": event["subject_id"]},
            "data": event["data"],
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


_DUE = text(
    "SELECT w.id FROM webhook_endpoints w, "
    "(SELECT max(position) AS top FROM events WHERE position IS NOT NULL) m "
    "WHERE w.status = 'enabled' AND w.cursor < m.top "
    "AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= :now) "
    "AND (w.leased_until IS NULL OR w.leased_until < :now) ORDER BY w.next_attempt_at NULLS FIRST LIMIT 1000"
)
_CLAIM = text(
    "UPDATE webhook_endpoints SET leased_until = :until WHERE id = :id AND status = 'enabled' "
    "AND (next_attempt_at IS NULL OR next_attempt_at <= :now) "
    "AND (leased_until IS NULL OR leased_until < :now) "
    "RETURNING id, mvno_id, url, types, secret_sealed, previous_secret_sealed, previous_secret_until, "
    "cursor, failing_since, failed_attempts"
)


async def deliver_once(
    db: Database, clock: Clock, settings: Settings, *, client: httpx.AsyncClient | None = None
) -> DeliveryReport:
    """One pass over every endpoint that has events to send and is due."""
    report = DeliveryReport()
    async with db.transaction() as session:
        due = [row.id for row in await session.execute(_DUE, {"now": clock.now()})]
    if not due:
        return report
    own_client = client is None
    http = client or new_client(settings)
    gate = asyncio.Semaphore(settings.webhook_concurrency)

    async def serve(endpoint_id: str) -> None:
        async with gate:
            try:
                await _serve_endpoint(db, clock, settings, http, endpoint_id, report)
            except Exception:
                log.exception("webhook delivery failed", extra={"endpoint_id": endpoint_id})

    try:
        await asyncio.gather(*(serve(endpoint_id) for endpoint_id in due))
    finally:
        if own_client:
            await http.aclose()
    return report


def new_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects (a 3xx could point at an internal address) and no proxy settings from the environment.
    return httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    )


async def _serve_endpoint(
    db: Database,
    clock: Clock,
    settings: Settings,
    http: httpx.AsyncClient,
    endpoint_id: str,
    report: DeliveryReport,
) -> None:
    now = clock.now()
    async with db.transaction() as session:
        claimed = (
            (await session.execute(_CLAIM, {"id": endpoint_id, "now": now, "until": now + _lease(settings)}))
            .mappings()
            .one_or_none()
        )
    if claimed is None:
        return  # another worker has it, or it is not due any more
    endpoint = dict(claimed)
    keys = pii.keyring(settings)
    try:
        for _ in range(EVENTS_PER_PASS):
            event, upto = await _next_event(db, settings, endpoint)
            if event is None:
                if upto <= endpoint["cursor"]:
                    return
                # Nothing for this endpoint up to ``upto`` (filtered out): move past it.
                if not await _advance(db, endpoint, upto, clock, settings):
                    return
                continue
            secrets = [signing.unseal(keys, endpoint_id, endpoint["secret_sealed"])]
            if (
                endpoint["previous_secret_sealed"] is not None
                and (endpoint["previous_secret_until"] or now) > clock.now()
            ):
                secrets.append(signing.unseal(keys, endpoint_id, endpoint["previous_secret_sealed"]))
            outcome = await send(http, settings, endpoint["url"], event, secrets)
            if outcome.ok:
                report.delivered += 1
                if not await _record_success(db, clock, settings, endpoint, event, outcome):
                    return
            else:
                report.failed += 1
                report.disabled += await _record_failure(db, clock, settings, endpoint, event, outcome)
                return
    finally:
        async with db.transaction() as session:
            await session.execute(
                # Only while the cursor is where this worker left it: a worker that outlived its lease
                # must not release the lease of the one that took over (and moved on).
                text("UPDATE webhook_endpoints SET leased_until = NULL WHERE id = :id AND cursor = :cursor"),
                {"id": endpoint_id, "cursor": endpoint["cursor"]},
            )


async def _next_event(
    db: Database, settings: Settings, endpoint: dict[str, Any]
) -> tuple[RowMapping | None, int]:
    """The endpoint's next matching event after its cursor, and how far the scan looked (bounded by
    ``feed_scan_window``, as the feed's polls are)."""
    clauses = ["e.position > :after", "e.position <= b.upto"]
    params: dict[str, Any] = {"after": endpoint["cursor"], "window": settings.feed_scan_window}
    if endpoint["mvno_id"] is not None:
        clauses.append("e.mvno_id = :mvno_id")
        params["mvno_id"] = endpoint["mvno_id"]
    if endpoint["types"] is not None:
        clauses.append("e.type = ANY(:types)")
        params["types"] = list(endpoint["types"])
    async with db.transaction() as session:
        result = await session.execute(
            text(
                "WITH b AS (SELECT least(coalesce(max(position), 0), CAST(:after AS bigint) + :window) "
                "AS upto FROM events WHERE position IS NOT NULL) "
                "SELECT b.upto, f.* FROM b LEFT JOIN LATERAL (SELECT e.id, e.type, e.occurred_at, "
                "e.mvno_id, e.subject_kind, e.subject_id, e.data, e.position FROM events e "
                f"WHERE {' AND '.join(clauses)} ORDER BY e.position LIMIT 1) AS f ON TRUE"
            ),
            params,
        )
        row = result.mappings().one()
    upto = int(row["upto"])
    return (row if row["id"] is not None else None), upto


async def _advance(
    db: Database, endpoint: dict[str, Any], position: int, clock: Clock, settings: Settings
) -> bool:
    """Move the cursor from where this worker left it (false if another worker moved it meanwhile)."""
    async with db.transaction() as session:
        moved = await session.scalar(
            text(
                "UPDATE webhook_endpoints SET cursor = :position, leased_until = :until "
                "WHERE id = :id AND cursor = :old RETURNING 1"
            ),
            {
                "id": endpoint["id"],
                "old": endpoint["cursor"],
                "position": position,
                "until": clock.now() + _lease(settings),
            },
        )
    if moved is None:
        return False
    endpoint["cursor"] = position
    return True


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


async def send(
    http: httpx.AsyncClient, settings: Settings, url: str, event: RowMapping, secrets: list[str]
) -> Outcome:
    return await post_signed(http, settings, url, event["id"], payload(event), secrets)


async def post_signed(
    http: httpx.AsyncClient, settings: Settings, url: str, msg_id: str, body: bytes, secrets: list[str]
) -> Outcome:
    """POST ``body`` signed the Standard Webhooks way (also used by recycling/ for reissue batches),
    the URL re-checked first; a 2xx is success, anything else (or no answer) a failure."""
    # The receiver checks the timestamp against its own wall clock (replay protection), so it is the
    # wall-clock time of this attempt, not the injectable clock.
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": f"mvno-core/{__version__}",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(secrets, msg_id, timestamp, body),
    }
    started = time.monotonic()
    try:
        await urls.check_url(url, settings)  # the DNS answer may have changed since registration
        response = await http.post(url, content=body, headers=headers)
    except urls.UrlRefused as exc:
        return Outcome(False, None, str(exc)[:_ERROR_MAX], _elapsed_ms(started))
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:_ERROR_MAX], _elapsed_ms(started))
    ok = 200 <= response.status_code < 300
    error = None if ok else f"HTTP {response.status_code}"
    return Outcome(ok, response.status_code, error, _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


_LOG_ATTEMPT = (
    "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, attempt, attempted_at, "
    "status_code, error, succeeded, duration_ms) SELECT :id, :event_id, :event_type, :attempt, :now, "
    ":status_code, :error, :succeeded, :duration_ms FROM moved"
)


def _attempt_params(
    endpoint: dict[str, Any], event: RowMapping, outcome: Outcome, now: datetime, attempt: int
) -> dict[str, Any]:
    return {
        "id": endpoint["id"],
        "old": endpoint["cursor"],
        "event_id": event["id"],
        "event_type": event["type"],
        "attempt": attempt,
        "now": now,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "succeeded": outcome.ok,
        "duration_ms": outcome.duration_ms,
    }


async def _record_success(
    db: Database,
    clock: Clock,
    settings: Settings,
    endpoint: dict[str, Any],
    event: RowMapping,
    outcome: Outcome,
) -> bool:
    now = clock.now()
    params = _attempt_params(endpoint, event, outcome, now, endpoint["failed_attempts"] + 1)
    params |= {"position": event["position"], "until": now + _lease(settings)}
    async with db.transaction() as session:
        moved = await session.scalar(
            text(
                "WITH moved AS (UPDATE webhook_endpoints SET cursor = :position, failed_attempts = 0, "
                "failing_since = NULL, next_attempt_at = NULL, leased_until = :until "
                "WHERE id = :id AND cursor = :old RETURNING id), "
                f"logged AS ({_LOG_ATTEMPT}) SELECT count(*) FROM moved"
            ),
            params,
        )
    if not moved:
        return False
    endpoint["cursor"] = event["position"]
    endpoint["failed_attempts"] = 0
    endpoint["failing_since"] = None
    return True


async def _record_failure(
    db: Database,
    clock: Clock,
    settings: Settings,
    endpoint: dict[str, Any],
    event: RowMapping,
    outcome: Outcome,
) -> int:
    """Log the attempt and schedule the retry; disable the endpoint after a day of failures. 1 if
    it was disabled."""
    now = clock.now()
    failed = endpoint["failed_attempts"] + 1
    failing_since = endpoint["failing_since"] or now
    disable = now - failing_since >= timedelta(hours=settings.webhook_disable_after_hours)
    params = _attempt_params(endpoint, event, outcome, now, failed)
    params |= {
        "failed": failed,
        "failing_since": failing_since,
        "next": None if disable else now + timedelta(seconds=backoff_seconds(failed, settings)),
        "status": "disabled" if disable else "enabled",
        "disabled_at": now if disable else None,
        "reason": (
            f"Deliveries failed continuously since {failing_since.isoformat()} ({failed} attempts); "
            f"last error: {outcome.error}"
        )
        if disable
        else None,
    }
    async with db.transaction() as session:
        moved = await session.scalar(
            text(
                "WITH moved AS (UPDATE webhook_endpoints SET failed_attempts = :failed, "
                "failing_since = :failing_since, next_attempt_at = :next, status = :status, "
                "disabled_at = :disabled_at, disabled_reason = :reason, leased_until = NULL "
                "WHERE id = :id AND cursor = :old RETURNING id), "
                f"logged AS ({_LOG_ATTEMPT}) SELECT count(*) FROM moved"
            ),
            params,
        )
        if moved and disable:
            ctx = RequestContext(
                session=session, principal=SYSTEM, request_id=None, now=now, settings=settings
            )
            await journal.record(
                ctx,
                action="webhook_endpoint.disable",
                subject=Subject("webhook_endpoint", endpoint["id"]),
                mvno_id=endpoint["mvno_id"],
                data={"reason": params["reason"], "failed_attempts": failed},
                event_type="webhook_endpoint.disabled",
            )
    return 1 if moved and disable else 0


async def prune_log(db: Database, now: datetime, settings: Settings, *, batch: int = 10_000) -> int:
    """Delete delivery attempts older than ``webhook_delivery_log_days``, in batches (one transaction
    each), so the log does not grow without bound."""
    cutoff = now - timedelta(days=settings.webhook_delivery_log_days)
    total = 0
    while True:
        async with db.transaction() as session:
            result = await session.execute(
                text(
                    "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries "
                    "WHERE attempted_at < :cutoff LIMIT :batch)"
                ),
                {"cutoff": cutoff, "batch": batch},
            )
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < batch:
            return total


async def run_forever(db: Database, clock: Clock, settings: Settings) -> None:
    """The in-server delivery loop (also ``mvno-core sweep --follow``); errors are logged, never fatal."""
    async with new_client(settings) as http:
        while True:
            try:
                await deliver_once(db, clock, settings, client=http)
            except Exception:
                log.exception("webhook delivery pass failed; retrying next round")
            await asyncio.sleep(settings.webhook_poll_seconds)
