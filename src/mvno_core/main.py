"""The app factory: routers, problem handlers, middleware, lifespan (engine, in-server sweeper)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import Receive, Scope, Send

from mvno_core import __version__
from mvno_core.audit.checkpoints import AuditKeyring
from mvno_core.audit.router import router as audit_router
from mvno_core.auth.router import router as api_keys_router
from mvno_core.auth.service import authenticate, authenticate_in_lane, principals
from mvno_core.blocks.router import router as blocks_router
from mvno_core.cancellations.router import router as cancellations_router
from mvno_core.console.router import router as console_router
from mvno_core.console.web import install_error_pages as install_console_error_pages
from mvno_core.events.listener import FeedSequencer
from mvno_core.events.router import router as events_router
from mvno_core.kernel.clock import Clock, SystemClock
from mvno_core.kernel.config import Settings, get_settings
from mvno_core.kernel.db import Database
from mvno_core.kernel.lean import LeanLane, LeanPool
from mvno_core.kernel.observability import Metrics, RequestContextMiddleware
from mvno_core.kernel.problems import PROBLEM_JSON, install_problem_handlers
from mvno_core.kernel.ratelimit import RateLimiter
from mvno_core.kernel.request_shape import AllowHeaderMiddleware
from mvno_core.lines import profiles as line_profiles
from mvno_core.lines.router import LEAN_ROUTES
from mvno_core.lines.router import router as lines_router
from mvno_core.mvnos.router import router as mvnos_router
from mvno_core.numbers.router import router as numbers_router
from mvno_core.ops import health, sweeper
from mvno_core.recycling.router import batches_router as recycling_batches_router
from mvno_core.recycling.router import check_router as number_recycling_router
from mvno_core.recycling.router import platforms_router as recycling_platforms_router
from mvno_core.reference.router import router as reference_router
from mvno_core.reservations.router import router as reservations_router
from mvno_core.stats.router import router as stats_router
from mvno_core.subscribers import pii
from mvno_core.subscribers.router import lookups_router as identity_lookups_router
from mvno_core.subscribers.router import router as subscribers_router
from mvno_core.takeovers.router import router as takeovers_router
from mvno_core.webhooks import worker as webhook_worker
from mvno_core.webhooks.router import router as webhooks_router

DESCRIPTION = """
Number lifecycle for MVNOs on segments 170/171/162/165/167: MVNO registry, H-code blocks, number search
and reservations, audit trail and event feed.

* Auth: `Authorization: Bearer <api key>`; roles operator, partner (one MVNO), regulator (read-only).
* Errors: RFC 9457 `application/problem+json`, match on `code`.
* Any POST may carry `Idempotency-Key` (replayed with `Idempotent-Replayed: true`).
"""


class MvnoApp(FastAPI):
    """The app, with the lean lane as its front door: the lane's routes (partners' activations) are
    answered before Starlette's middleware stack is entered (kernel/lean.py); everything else, and
    whatever the lane declines, goes through the whole stack."""

    lean_lane: LeanLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lean_lane
        if lane is not None and lane.serves(scope):
            scope["app"] = self  # as Starlette sets it: problem rendering reads the app's settings
            await lane(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _with_front_door(app: FastAPI) -> MvnoApp:
    """fastapi-offline builds a plain ``FastAPI`` (its docs pages need no CDN); the front door is a
    subclass's ``__call__`` (Python finds ``__call__`` on the type), so the instance takes that type.
    ``MvnoApp`` adds no state of its own beyond a class default, so the instance stays valid."""
    app.__class__ = MvnoApp
    return cast(MvnoApp, app)


def _openapi_with_problem_media_type(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents every response model as application/json; errors are problem+json."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[:1] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    run_sweeper: bool | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    url = database_url or settings.database_url
    if url is None:
        raise RuntimeError("create_app needs a database URL (resolve the embedded server first)")
    db = Database(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        idle_in_transaction_ms=settings.db_idle_in_transaction_ms,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    clock = clock or SystemClock()
    # Fail at start, not at the first registration, if the PII keys are missing or malformed (and
    # create the data folder's key file on first start).
    pii.keyring(settings)
    sweep_in_server = settings.run_sweeper_in_server if run_sweeper is None else run_sweeper
    keyring = AuditKeyring(settings.signing_key_path())
    feed = FeedSequencer(
        db,
        batch=settings.feed_sequencer_batch,
        idle_seconds=settings.feed_sequencer_idle_seconds,
        gather_seconds=settings.feed_sequencer_gather_ms / 1000,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = []
        # The line profiles' rules, read once here so no activation pays for it (before migrations
        # ran there is no table yet: the first activation then reads it).
        with contextlib.suppress(SQLAlchemyError):
            async with db.transaction() as session:
                await line_profiles.load(session)
        if settings.run_feed_sequencer_in_server:
            # One dedicated LISTEN connection; this process's own commits wake it without a NOTIFY.
            feed.attach()
            tasks.append(asyncio.create_task(feed.run()))
        if sweep_in_server:
            tasks.append(asyncio.create_task(sweeper.run_forever(db, clock, settings, keyring=keyring)))
        if settings.run_webhooks_in_server:
            tasks.append(asyncio.create_task(webhook_worker.run_forever(db, clock, settings)))
        try:
            yield
        finally:
            feed.detach()
            await lean_pool.close()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await db.dispose()

    # Swagger UI and ReDoc assets are served from the pinned fastapi-offline package, not a CDN: /docs
    # must work on a machine without internet access (and leaks no page views to a third party).
    app = _with_front_door(
        FastAPIOffline(
            title="mvno-core",
            version=__version__,
            description=DESCRIPTION,
            lifespan=lifespan,
            # Metrics are Prometheus's (/metrics) and logs are JSON lines; FastAPI's OpenTelemetry hooks
            # would otherwise look up three global providers on every request.
            telemetry={"tracing": False, "metrics": False, "logs": False},
        )
    )
    app.state.settings = settings
    app.state.db = db
    app.state.clock = clock
    app.state.authenticate = authenticate
    principals.ttl = settings.auth_cache_seconds
    app.state.metrics = Metrics()
    app.state.verify_lock = asyncio.Lock()
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.audit_keyring = keyring
    app.state.feed_sequencer = feed
    app.state.migration_head = health.expected_head()

    install_problem_handlers(app)
    install_console_error_pages(app)
    app.openapi = lambda: _openapi_with_problem_media_type(app)  # type: ignore[method-assign]
    for router in (
        health.router,
        reference_router,
        api_keys_router,
        mvnos_router,
        blocks_router,
        numbers_router,
        reservations_router,
        subscribers_router,
        identity_lookups_router,
        lines_router,
        cancellations_router,
        takeovers_router,
        audit_router,
        events_router,
        console_router,
        webhooks_router,
        stats_router,
        recycling_platforms_router,
        recycling_batches_router,
        number_recycling_router,
    ):
        app.include_router(router)
    lean_pool = LeanPool(db.url, settings)
    app.state.lean_pool = lean_pool
    app.lean_lane = LeanLane(
        functools.partial(FastAPI.__call__, app),  # the whole stack, for what the lane declines
        routes=LEAN_ROUTES,
        settings=settings,
        clock=clock,
        pool=lean_pool,
        authenticate=authenticate_in_lane,
        rate_check=app.state.rate_limiter.check,
        events_committed=db.on_events_committed,
        metrics=app.state.metrics,
    )
    app.add_middleware(AllowHeaderMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    return app
