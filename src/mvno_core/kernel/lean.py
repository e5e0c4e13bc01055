"""The lean lane: the hottest partner write (activation) served without the framework's per-request
machinery, in one round trip to the database.

A full-stack request spends most of its CPU outside the SQL: route matching through nested routers,
dependency solving, the ORM session and its greenlet hops, and four round trips (BEGIN, the
Idempotency-Key's lock and lookup, the statement, COMMIT). The lane answers a few ``(method, path)``
pairs itself: the body read with its cap, the principal from the authentication
cache, the use case's statement pieces (the same pieces the full stack runs) with the Idempotency-Key
check joined as one more CTE, sent over a plain psycopg connection in autocommit as ONE statement.

The lane is the app's front door (``main.MvnoApp``): a request it serves never enters Starlette's
middleware stack, so it does the outer layers' work itself (the request id, the ``X-Request-ID`` header,
metrics and the access log, a 500 problem for the unexpected), with the same functions. A request it
declines enters the whole stack from the top, as if the lane were not there.

A statement in autocommit commits whatever it did unless it fails. So its last expression decides:
when a gate refused, or the key was in flight or already used, it calls ``lean_lane_decline()`` (a
function that raises; migration 0011), the database undoes everything the statement did, and the lane
hands the request, body intact, to the full stack, which gives the canonical answer (the refusal's
details, the replay, the 409 or 422). The lane answers only successes: every error and every replay a
client can see comes from one code path, and a declined request has changed nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, NoReturn

import psycopg
import psycopg_pool
from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus
from psycopg.pq.abc import PGconn, PGresult
from psycopg.rows import RowMaker
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mvno_core.kernel import idempotency
from mvno_core.kernel.clock import Clock
from mvno_core.kernel.config import Settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.observability import Metrics, observe, request_id_for
from mvno_core.kernel.principal import Principal, Role
from mvno_core.kernel.problems import PROBLEM_JSON, DomainError, ServiceUnavailable, render, render_unexpected
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.statements import Piece, compose_for_driver, driver_text

log = logging.getLogger("mvno_core.lean")
TUPLES_OK = ExecStatus.TUPLES_OK


class Decline(Exception):
    """Hand the request to the full stack. Raised before the lane commits anything."""


class _NoSession:
    """The lane's context has no ORM session: a use case run in the lane is statement pieces only. Any
    use of the session is a programming error, reported as such (and the request declined)."""

    def __getattr__(self, name: str) -> NoReturn:
        raise Decline(f"the lean lane has no ORM session (use case touched session.{name})")


NO_SESSION: Any = _NoSession()


@dataclass(slots=True)
class LeanCall:
    """One request in the lane: its context (principal, time, Idempotency-Key claim), body, connection."""

    ctx: RequestContext
    body: bytes
    connection: psycopg.AsyncConnection[dict[str, Any]]
    pool: LeanPool

    async def run(self, pieces: list[Piece], final: str, *, take_effect_if: str) -> dict[str, Any]:
        """Send ``pieces`` + ``final`` as one statement in autocommit. It takes effect only if
        ``take_effect_if`` (SQL over ``final``'s columns, named ``result.<column>``) holds and the
        Idempotency-Key, if any, was claimed cleanly; otherwise it raises in the database, nothing of it
        remains, and the request is declined."""
        pieces, decided = decided_statement(
            pieces, final, take_effect_if=take_effect_if, claim=self.ctx.idempotency
        )
        sql, params = compose_for_driver(pieces, decided)
        try:
            row = await self.pool.fetch_one_direct(self.connection, sql, params)
        except psycopg.errors.RaiseException as declined:
            raise Decline(str(declined)) from declined
        if row is None:
            raise Decline("the statement answered no row")
        return row


def decided_statement(
    pieces: list[Piece], final: str, *, take_effect_if: str, claim: idempotency.IdempotencyClaim | None
) -> tuple[list[Piece], str]:
    """The lane's statement: the Idempotency-Key's check joined to ``pieces`` (given a claim), and a
    final SELECT whose last expression raises unless the statement is to take effect (also what the
    benchmark's raw-SQL limit runs, so both sides send the same statement)."""
    condition = f"({take_effect_if})"
    source = f"({final}) AS result"
    if claim is not None:
        pieces = [_claim_check(claim), *pieces]
        condition += " AND key_check.key_locked AND key_check.key_fingerprint IS NULL"
        source += " CROSS JOIN key_check"
    # CASE evaluates its ELSE branch only when the condition fails: the raise happens only then.
    decided = (
        f"SELECT result.*, CASE WHEN {condition} THEN TRUE "
        f"ELSE lean_lane_decline('refused') END AS took_effect FROM {source}"
    )
    return pieces, decided


def _claim_check(claim: idempotency.IdempotencyClaim) -> Piece:
    """The full stack's ``idempotency.begin`` as a CTE: the key's lock, taken without waiting, and its
    stored record, read on the statement's snapshot. The statement takes effect only if the lock was
    taken and no record existed (the reasoning in ``idempotency._BEGIN`` holds: a record committed after
    the snapshot breaks ``pk_idempotency_keys`` when this one is inserted, and the statement fails)."""
    return Piece(
        "key_check",
        f"SELECT {idempotency.LOCK_SQL} AS key_locked, k.fingerprint AS key_fingerprint "
        "FROM (SELECT 1) AS one LEFT JOIN idempotency_keys k ON k.api_key_id = :idem_k AND k.key = :idem_key",
        {
            "scope": idempotency.lock_scope(claim.api_key_id, claim.key),
            "idem_k": claim.api_key_id,
            "idem_key": claim.key,
        },
    )


LeanHandler = Callable[[LeanCall], Awaitable[Reply]]
# A statement (``:name`` binds) and its parameters → its first row, over the lane's connection.
LeanLookup = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any] | None]]
# ``Authorization`` header → the principal (from the cache, else one lookup), or None: not for the lane.
LeanAuthenticate = Callable[[str | None, LeanLookup], Awaitable[Principal | None]]


@dataclass(frozen=True, slots=True)
class LeanRoute:
    method: str
    path: str
    handler: LeanHandler
    # Roles the lane serves; others go to the full stack (e.g. the operator's activation needs a read).
    roles: frozenset[Role] = frozenset({Role.PARTNER})


# What pg_stat_activity shows for the lane's connections.
LANE_APPLICATION_NAME = "mvno-core lean lane"


def _named_row(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[dict[str, Any]]:
    """psycopg's ``dict_row`` without its column descriptions (objects per column, per statement):
    the names come straight from the result."""
    result = cursor.pgresult
    names = [(result.fname(i) or b"").decode() for i in range(result.nfields)] if result else []

    def make(values: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(names, values, strict=True))

    return make


def driver_conninfo(url: str) -> str:
    """The SQLAlchemy URL of ``Database`` as a libpq URL for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class LeanPool:
    """The lane's plain psycopg connections: opened at the first lane request, closed with the app."""

    def __init__(self, database_url: str, settings: Settings) -> None:
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
            driver_conninfo(database_url),
            min_size=1,
            max_size=settings.lean_pool_size,
            open=False,
            timeout=settings.db_pool_timeout_seconds,
            kwargs={
                "autocommit": True,
                "application_name": LANE_APPLICATION_NAME,
                "row_factory": _named_row,
                "options": f"-c idle_in_transaction_session_timeout={settings.db_idle_in_transaction_ms}",
            },
            name="lean",
        )
        self._opening: asyncio.Lock | None = None
        self._opened = False
        # Statements prepared by ``fetch_one_direct``, per connection (by id; dropped with it).
        self._prepared: dict[int, dict[bytes, bytes]] = {}
        # Told the text of every statement the lane sends (the full stack's engine has SQLAlchemy's
        # events for the same): the round-trip tests count both paths.
        self.listeners: list[Callable[[str], None]] = []

    async def fetch_one(
        self, connection: psycopg.AsyncConnection[dict[str, Any]], sql: str, params: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        for listener in self.listeners:
            listener(sql)
        cursor = await connection.execute(sql, params)
        result = cursor.pgresult
        return await cursor.fetchone() if result is not None and result.status == TUPLES_OK else None

    async def fetch_one_direct(
        self, connection: psycopg.AsyncConnection[dict[str, Any]], sql: str, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """``fetch_one`` for the lane's hot statement, spoken to libpq directly: the statement prepared
        once per connection, the parameters sent as text, the row's values returned as text or None
        (typed, where psycopg took the statement; the lane reads only whether a row came back).

        psycopg's execute costs about twice the CPU of the exchange itself on this path (its query
        conversion, generator steps and waits): measured with 48 parameters, 294 against 159 µs per
        statement. A parameter of a type this encoder does not know sends the statement through
        psycopg instead. A failed statement raises as psycopg would (``RaiseException`` for the
        decline, ``DatabaseError`` otherwise); a broken exchange closes the connection (the pool then
        replaces it) and raises ``OperationalError``."""
        text, names = _numbered(sql)
        try:
            encoded = [_text_param(params[name]) for name in names]
        except _NotEncodable:
            return await self.fetch_one(connection, sql, params)
        for listener in self.listeners:
            listener(sql)
        prepared = self._prepared.setdefault(id(connection), {})
        pgconn = connection.pgconn
        statement = prepared.get(text)
        if statement is None:
            statement = f"lean_{len(prepared)}".encode()
            oids = [oid for _, oid in encoded]
            _raise_failed(
                await self._exchange(connection, lambda: pgconn.send_prepare(statement, text, oids))
            )
            prepared[text] = statement
        values = [value for value, _ in encoded]
        result = await self._exchange(connection, lambda: pgconn.send_query_prepared(statement, values))
        if result.error_field(DiagnosticField.SQLSTATE) == _CACHED_PLAN_CHANGED:
            # A migration changed what the prepared statement returns (a rolling deploy): the server
            # refuses to run it again on this connection, so the connection goes and a new one prepares
            # the statement afresh.
            self._prepared.pop(id(connection), None)
            await connection.close()
        _raise_failed(result)
        if result.ntuples == 0:
            return None
        return {
            (result.fname(i) or b"").decode(): _text_value(result.get_value(0, i))
            for i in range(result.nfields)
        }

    async def _exchange(
        self, connection: psycopg.AsyncConnection[dict[str, Any]], send: Callable[[], None]
    ) -> PGresult:
        try:
            return await _exchange(connection.pgconn, send)
        except BaseException:
            # The exchange broke off (the connection failed, or the request was cancelled while the
            # statement ran): results may still be on their way, so the connection cannot be reused.
            self._prepared.pop(id(connection), None)
            await connection.close()
            raise

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """A pooled connection the server has not ended. A session the server ended while it was idle
        (a restart, ``pg_terminate_backend``) left its last message on the socket: that is seen without
        a round trip, and the connection is replaced, so the request never runs on it."""
        for _ in range(self.pool.max_size + 1):
            connection = await self.pool.getconn()
            try:
                _ensure_alive(connection)
            except psycopg.OperationalError:
                self._prepared.pop(id(connection), None)
                await connection.close()
                await self.pool.putconn(connection)  # a closed connection is discarded and replaced
                continue
            try:
                yield connection
            finally:
                await self.pool.putconn(connection)
            return
        raise psycopg.OperationalError("no live connection in the lean lane's pool")

    async def ensure_open(self) -> None:
        if self._opened:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if not self._opened:
                await self.pool.open(wait=False)
                self._opened = True

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()
            self._opened = False


_BIND = re.compile(r"%\((\w+)\)s|%%")


@lru_cache(maxsize=64)
def _numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """A driver statement's ``%(name)s`` binds as libpq's ``$n``, and the names in ``$n`` order."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"  # ``%%``: a literal percent sign
        return f"${order.setdefault(name, len(order) + 1)}"

    return _BIND.sub(number, sql).encode(), tuple(order)


class _NotEncodable(Exception):
    pass


# The type each parameter is sent as, as psycopg sends it (``unknown`` for text: the server infers it).
_BOOL, _INT8, _BYTEA, _DATE, _TIMESTAMPTZ, _TEXT_ARRAY, _UNKNOWN = 16, 20, 17, 1082, 1184, 1009, 0


def _text_param(value: Any) -> tuple[bytes | None, int]:
    """One parameter in PostgreSQL's text format, and its type's OID."""
    if value is None:
        return None, _UNKNOWN
    kind = type(value)
    if kind is str:
        return value.encode(), _UNKNOWN
    if kind is bool:
        return (b"t" if value else b"f"), _BOOL
    if kind is int:
        return str(value).encode(), _INT8
    if kind is datetime:
        if value.tzinfo is None:
            raise _NotEncodable("a naive datetime")
        return value.isoformat().encode(), _TIMESTAMPTZ
    if kind is date:
        return value.isoformat().encode(), _DATE
    if kind is bytes:
        return b"\\x" + value.hex().encode(), _BYTEA
    if kind in (list, tuple) and all(type(item) is str for item in value):
        quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in value)
        return ("{" + ",".join(quoted) + "}").encode(), _TEXT_ARRAY
    raise _NotEncodable(kind.__name__)


def _text_value(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


async def _exchange(pgconn: PGconn, send: Callable[[], None]) -> PGresult:
    """Send one command and wait for its last result, without blocking the event loop."""
    send()
    loop = asyncio.get_running_loop()
    while pgconn.flush():  # 1: the socket's buffer is full; wait until it can take the rest
        await _until(loop, pgconn.socket, writable=True)
    last: PGresult | None = None
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                if last is None:
                    raise psycopg.OperationalError("the server answered no result")
                return last
            last = result
        await _until(loop, pgconn.socket, writable=False)


async def _until(loop: asyncio.AbstractEventLoop, fd: int, *, writable: bool) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if writable else loop.add_reader)(fd, wake)
    try:
        await ready
    finally:
        (loop.remove_writer if writable else loop.remove_reader)(fd)


# "cached plan must not change result type"
_CACHED_PLAN_CHANGED = b"0A000"


def _raise_failed(result: PGresult) -> None:
    if result.status in (ExecStatus.TUPLES_OK, ExecStatus.COMMAND_OK):
        return
    message = (result.error_message or b"").decode(errors="replace").strip()
    if result.error_field(DiagnosticField.SQLSTATE) == b"P0001":
        raise psycopg.errors.RaiseException(message)
    if result.status == ExecStatus.FATAL_ERROR:
        raise psycopg.DatabaseError(message)
    raise psycopg.OperationalError(f"unexpected result status {result.status}: {message}")


def _ensure_alive(connection: psycopg.AsyncConnection[Any]) -> None:
    pgconn = connection.pgconn
    if connection.closed or pgconn.status != ConnStatus.OK:
        raise psycopg.OperationalError("connection closed")
    readable, _, _ = select.select([pgconn.socket], [], [], 0)
    if readable:
        # An idle session LISTENing to nothing is sent nothing unasked but, almost always, its end
        # (a FATAL message, then EOF): replace it (a rare harmless message costs one reconnect).
        raise psycopg.OperationalError("the server spoke to an idle connection")


class LeanLane:
    """The front door for the lane's routes; ``app`` is the whole stack, for everything it declines."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: list[LeanRoute],
        settings: Settings,
        clock: Clock,
        pool: LeanPool,
        authenticate: LeanAuthenticate,
        rate_check: Callable[[str | None], None],
        events_committed: Sequence[Callable[[], None]],
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.routes = {(route.method, route.path): route for route in routes}
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.pool = pool
        self.authenticate = authenticate
        self.rate_check = rate_check
        self.events_committed = events_committed

    def serves(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and self.settings.lean_lane
            and (scope["method"], scope["path"]) in self.routes
            and not scope.get("query_string")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes[(scope["method"], scope["path"])]
        started = time.perf_counter()
        headers = dict(scope["headers"])
        try:
            body = await _read_small_body(headers, receive, self.settings.max_body_bytes)
        except _ClientGone:
            return  # nobody to answer; nothing was done
        if body is None:  # no declared length, or too long: the full stack reads (and refuses) it
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        try:
            reply = await self._answer(scope, route, headers, body)
        except Decline as declined:
            log.debug("lean lane declined: %s", declined)
            reply = None
        except Exception as exc:  # a bug: the same generic 500 problem as the full stack's
            response = await render_unexpected(Request(scope), exc)
            reply = Reply(status_code=response.status_code, body=bytes(response.body))
        if reply is None:
            scope["state"].pop("request_id", None)
            scope["state"].pop("ctx", None)
            await self.app(scope, _replayed(body, receive), send)
            return
        try:
            await _send(send, reply, request_id)
        finally:
            observe(
                self.metrics,
                scope,
                template=route.path,
                status=reply.status_code,
                elapsed=time.perf_counter() - started,
                request_id=request_id,
            )

    async def _answer(
        self, scope: Scope, route: LeanRoute, headers: dict[bytes, bytes], body: bytes
    ) -> Reply | None:
        if headers.get(b"content-type", b"").split(b";")[0].strip() != b"application/json":
            return None
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            self.rate_check(authorization)
        except Exception:  # the full stack checks again and answers 429
            return None
        await self.pool.ensure_open()
        ctx: RequestContext | None = None
        try:
            async with self.pool.connection() as connection:

                async def lookup(sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
                    return await self.pool.fetch_one(connection, driver_text(sql), params)

                try:
                    principal = await self.authenticate(authorization, lookup)
                except psycopg.Error as exc:
                    raise Decline("the key's lookup failed") from exc
                if principal is None or principal.role not in route.roles:
                    raise Decline("not a key the lane serves")
                ctx = self._context(scope, route, principal, authorization, headers, body)
                reply = await route.handler(LeanCall(ctx, body, connection, self.pool))
                if not self.events_committed:
                    # No sequencer in this process: wake the one elsewhere (as Database.transaction
                    # does for the full stack), now that the events are committed.
                    await self.pool.fetch_one(connection, "NOTIFY mvno_events", None)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout, OSError) as exc:
            # The connection failed while the statement ran: whether it took effect is unknown, so the
            # request is not run again here. Like the full stack: 503, and the client retries (with its
            # key, which then replays the effect if there was one).
            request_id = scope.get("state", {}).get("request_id")
            log.warning("lean lane lost its connection: %r", exc, extra={"request_id": request_id})
            lost = ServiceUnavailable("The database connection was lost; retry the request.")
            return _problem_reply(scope, lost)
        except (Decline, psycopg.Error) as exc:
            # The statement failed (or never ran), so nothing of it remains: the full stack runs the
            # request afresh.
            log.debug("lean lane handed over: %r", exc)
            return None
        for wake in self.events_committed:
            wake()
        return reply

    def _context(
        self,
        scope: Scope,
        route: LeanRoute,
        principal: Principal,
        authorization: str | None,
        headers: dict[bytes, bytes],
        body: bytes,
    ) -> RequestContext:
        claim = None
        raw_key = headers.get(b"idempotency-key")
        if raw_key is not None:
            try:
                key = idempotency.validate_key(raw_key.decode("latin-1"))
            except DomainError as exc:
                raise Decline("the Idempotency-Key is not valid") from exc
            secret = (authorization or "").partition(" ")[2].strip()
            claim = idempotency.IdempotencyClaim(
                api_key_id=principal.key_id,
                key=key,
                fingerprint=idempotency.fingerprint(route.method, route.path, body, secret=secret),
            )
        ctx = RequestContext(
            session=NO_SESSION,
            principal=principal,
            request_id=scope.get("state", {}).get("request_id"),
            now=self.clock.now(),
            settings=self.settings,
            idempotency=claim,
            method=route.method,
            path=route.path,
        )
        scope.setdefault("state", {})["ctx"] = ctx  # the access log names the key
        return ctx


class _ClientGone(Exception):
    pass


def _problem_reply(scope: Scope, error: DomainError) -> Reply:
    response = render(Request(scope), error)
    return Reply(status_code=response.status_code, body=bytes(response.body), headers={"Retry-After": "1"})


async def _read_small_body(headers: dict[bytes, bytes], receive: Receive, limit: int) -> bytes | None:
    declared = headers.get(b"content-length", b"")
    if not declared.isdigit() or int(declared) > limit:
        return None
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replayed(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the full stack the body the lane already read, then the server's own
    (which reports the client's disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _send(send: Send, reply: Reply, request_id: str) -> None:
    media_type = PROBLEM_JSON if reply.status_code >= 400 else "application/json"
    raw_headers = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(reply.body)).encode()),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers.items()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": reply.status_code, "headers": raw_headers})
    await send({"type": "http.response.body", "body": reply.body})
