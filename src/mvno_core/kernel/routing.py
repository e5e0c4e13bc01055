"""The request boundary: one transaction per request, committed before the response leaves.

``ApiRoute`` wraps every ``/v1`` route: it reads the body (64 KiB cap), opens the session and transaction,
authenticates, enforces the regulator's read-only rule and a recycling platform's single route, handles
``Idempotency-Key``, runs the endpoint and commits. If the endpoint raises, the transaction rolls back and
the error handlers render problem+json, so a failed commit can never follow a 2xx.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel import idempotency
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.principal import Principal, Role
from mvno_core.kernel.problems import Forbidden, PayloadTooLarge
from mvno_core.kernel.request_shape import reject_unknown_query_params

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POST routes that only read (identity lookups, searches, the console's 一证通查): the regulator may
# call them.
READ_ONLY_POST_PATHS: frozenset[str] = frozenset(
    {"/v1/subscribers/search", "/v1/identity-lookups", "/console/lookup", "/v1/number-recycling/check"}
)
# Response fields never stored for idempotent replay: secrets are shown once (a replay says so instead).
SECRET_RESPONSE_FIELDS: dict[str, tuple[str, ...]] = {
    "/v1/api-keys": ("key",),
    "/v1/webhook-endpoints": ("secret",),
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret": ("secret",),
    "/v1/recycling-platforms": ("secret",),
}
REDACTED = "<shown once; not stored>"
# The only routes a recycling platform's key may call (every other route, read or write, is 403): the
# platforms serve every network's users, so the check answers for any number, and nothing else here is
# theirs to see.
RECYCLING_PLATFORM_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/v1/number-recycling/check")})


def _storable_body(route_path: str, body: bytes) -> bytes:
    fields = SECRET_RESPONSE_FIELDS.get(route_path)
    if not fields:
        return body
    document = json.loads(body)
    for field in fields:
        if field in document:
            document[field] = REDACTED
    return json.dumps(document, ensure_ascii=False).encode()


async def read_body_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request bodies are limited to {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request bodies are limited to {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    # Starlette caches the body on the request object; FastAPI then parses it from there.
    request._body = body
    return body


def _bearer_secret(request: Request) -> str:
    """The API key secret the caller authenticated with (authentication has already checked it)."""
    return request.headers.get("authorization", "").partition(" ")[2].strip()


def _replay(stored: idempotency.StoredResponse) -> Response:
    headers = dict(stored.headers)
    headers["Idempotent-Replayed"] = "true"
    return Response(
        content=stored.body,
        status_code=stored.status_code,
        headers=headers,
        media_type="application/json" if stored.body else None,
    )


async def _idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=idempotency.MAX_KEY_LENGTH,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Optional, 1–255 characters. Same key + same body → the stored response "
            "(Idempotent-Replayed: true); other body → 422; while the first runs → 409.",
        ),
    ] = None,
) -> None:
    """Declares the header in OpenAPI; ``ApiRoute`` does the work (it must run before the endpoint)."""


def ensure_may_write(principal: Principal, method: str, route_path: str) -> None:
    """The regulator reads everything and changes nothing (read-only POSTs excepted), whatever the
    client (API or console) shows or hides."""
    if (
        principal.role is Role.REGULATOR
        and method not in SAFE_METHODS
        and route_path not in READ_ONLY_POST_PATHS
    ):
        raise Forbidden("The regulator role is read-only.")


def ensure_role_may_call(principal: Principal, method: str, route_path: str) -> None:
    """A recycling platform's key calls its own routes only, before any body or query is looked at."""
    if principal.role is Role.RECYCLING_PLATFORM and (method, route_path) not in RECYCLING_PLATFORM_ROUTES:
        raise Forbidden("A recycling platform's key may only call POST /v1/number-recycling/check.")


def new_context(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    claim: idempotency.IdempotencyClaim | None = None,
) -> RequestContext:
    """The context of one request inside its transaction (API routes and console pages alike)."""
    state = request.app.state
    ctx = RequestContext(
        session=session,
        principal=principal,
        request_id=getattr(request.state, "request_id", None),
        now=state.clock.now(),
        settings=state.settings,
        idempotency=claim,
        method=request.method,
        path=request.url.path,
    )
    request.state.ctx = ctx
    return ctx


class ApiRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" in {method.upper() for method in kwargs.get("methods") or ()}:
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), Depends(_idempotency_key_header)]
        kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), Depends(reject_unknown_query_params)]
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint_handler = super().get_route_handler()
        route_path = self.path

        async def handle(request: Request) -> Response:
            state = request.app.state
            settings = state.settings
            # Before the body is read and before a connection is taken: a flood costs no database work.
            state.rate_limiter.check(request.headers.get("authorization"))
            body = await read_body_limited(request, settings.max_body_bytes)
            async with state.db.transaction() as session:
                principal = await state.authenticate(session, request.headers.get("authorization"))
                ensure_may_write(principal, request.method, route_path)
                ensure_role_may_call(principal, request.method, route_path)
                claim: idempotency.IdempotencyClaim | None = None
                raw_key = request.headers.get("idempotency-key")
                if request.method == "POST" and raw_key is not None:
                    outcome = await idempotency.begin(
                        session,
                        api_key_id=principal.key_id,
                        key=idempotency.validate_key(raw_key),
                        request_fingerprint=idempotency.fingerprint(
                            request.method, request.url.path, body, secret=_bearer_secret(request)
                        ),
                    )
                    if isinstance(outcome, idempotency.StoredResponse):
                        return _replay(outcome)
                    claim = outcome
                ctx = new_context(request, session, principal, claim)

                response = await endpoint_handler(request)
                if claim is not None and not ctx.idempotency_recorded and 200 <= response.status_code < 300:
                    await idempotency.complete(
                        session,
                        claim,
                        method=request.method,
                        path=request.url.path,
                        status_code=response.status_code,
                        headers=dict(response.headers),
                        body=_storable_body(route_path, bytes(response.body)),
                        now=ctx.now,
                        ttl=timedelta(hours=settings.idempotency_ttl_hours),
                    )
            return response

        return handle


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


async def _context(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> RequestContext:
    ctx: RequestContext = request.state.ctx
    return ctx


Ctx = Annotated[RequestContext, Depends(_context)]


async def _operator_only(request: Request, ctx: Ctx) -> None:
    """Operator-only routes refuse others *before* the body is validated. A partner naming another
    MVNO in the path gets 404 (it does not exist for them); on its own MVNO, 403."""
    mvno_id = request.path_params.get("mvno_id")
    if mvno_id is not None:
        ctx.principal.ensure_can_see(mvno_id, "MVNO", mvno_id)
    ctx.principal.ensure_operator()


OperatorOnly = Depends(_operator_only)
