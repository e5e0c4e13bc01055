"""Domain errors and their RFC 9457 ``application/problem+json`` rendering.

Services raise ``DomainError`` subclasses; nothing else builds an error body. Every error path of the app
(validation, unknown route, wrong method, body too large, database constraint, unexpected exception) ends
in ``problem_response`` so clients can always match on ``code``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mvno_core.kernel.config import get_settings

log = logging.getLogger("mvno_core.errors")

PROBLEM_JSON = "application/problem+json"


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details; clients match on ``code``. Some codes add members (see docs/api.md)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    request_id: str | None
    errors: list[ProblemError] | None = None


def _problem_doc(description: str) -> dict[str, Any]:
    # Listed under application/json here; the app's OpenAPI hook moves it to application/problem+json.
    return {"model": Problem, "description": description}


# Documented on every /v1 router so the OpenAPI shows the error shape clients actually get.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("idempotency_key_invalid"),
    401: _problem_doc("unauthorized"),
    403: _problem_doc("forbidden"),
    404: _problem_doc("not_found"),
    409: _problem_doc(
        "conflict, illegal_transition, mvno_not_active, block_unavailable, number_unavailable, ..."
    ),
    413: _problem_doc("payload_too_large (bodies over 64 KiB)"),
    422: _problem_doc("validation_error, host_mismatch, region_not_licensed, idempotency_key_reused"),
    429: _problem_doc("rate_limited (retry after Retry-After)"),
    503: _problem_doc("service_unavailable (retry after Retry-After)"),
}


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    # Sent as Retry-After when set: the same request may succeed after that many seconds.
    retry_after_seconds: ClassVar[int | None] = None

    def __init__(self, detail: str | None = None, **members: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.members = members


class ValidationFailed(DomainError):
    status, code, title = 422, "validation_error", "Request validation failed"

    def __init__(self, detail: str, *, loc: Sequence[str | int] = ("body",)) -> None:
        super().__init__(detail, errors=[{"loc": list(loc), "msg": detail}])


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Missing, invalid or revoked API key"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "This role may not perform this action"


class NotFound(DomainError):
    status, code, title = 404, "not_found", "Resource not found"

    @classmethod
    def of(cls, kind: str, ident: str) -> NotFound:
        """The one text for "no such object": an object of another MVNO gets exactly this, too."""
        return cls(f"{kind} {ident} not found.")


class MethodNotAllowed(DomainError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class PayloadTooLarge(DomainError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class IdempotencyKeyInvalid(DomainError):
    status, code, title = 400, "idempotency_key_invalid", "Invalid Idempotency-Key header"


class IdempotencyKeyReused(DomainError):
    status, code, title = (
        422,
        "idempotency_key_reused",
        "Idempotency-Key reused with another request",
    )


class IdempotencyKeyInFlight(DomainError):
    status, code, title = (
        409,
        "idempotency_key_in_flight",
        "A request with this key is still running",
    )
    retry_after_seconds: ClassVar[int | None] = 1


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflicts with existing data"


class IllegalTransition(DomainError):
    status, code, title = 409, "illegal_transition", "The current state does not allow this action"

    def __init__(self, detail: str, *, current_status: str) -> None:
        super().__init__(detail, current_status=current_status)


class InternalError(DomainError):
    status, code, title = 500, "internal_error", "Internal server error"


class ServiceUnavailable(DomainError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


# Constraint name (from the naming convention) -> the error raised when it is violated. Each domain
# registers the constraints it owns (``<domain>/errors.py``); anything unmapped is a bug, reported as 500
# with the details only in the log.
CONSTRAINT_ERRORS: dict[str, type[DomainError]] = {}


def register_constraints(errors: dict[str, type[DomainError]]) -> None:
    """Map constraint names to the error their violation means; a name is owned by one domain only."""
    for name, error_class in errors.items():
        owner = CONSTRAINT_ERRORS.setdefault(name, error_class)
        if owner is not error_class:
            raise RuntimeError(f"constraint {name} is already mapped to {owner.__name__}")


def _problem_base(request: Request) -> str:
    settings = getattr(request.app.state, "settings", None) or get_settings()
    return str(settings.problem_base_uri)


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None) or request.headers.get("x-request-id")


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    members: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"{_problem_base(request)}{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "request_id": request_id_of(request),
    }
    if members:
        body.update(members)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def render(request: Request, error: DomainError) -> JSONResponse:
    # A class-wide Retry-After, or one decided per error (a rate limit's refill time).
    retry_after = getattr(error, "retry_after", None) or error.retry_after_seconds
    return problem_response(
        request,
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        members=error.members,
        headers={"Retry-After": str(retry_after)} if retry_after else None,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")).removeprefix("Value error, ")}
        for err in exc.errors()
    ]


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return render(request, exc)


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    content_type = request.headers.get("content-type", "")
    sent_body = request.headers.get("content-length", "0") != "0"
    detail = (
        "Send the body as JSON (Content-Type: application/json); see errors."
        if sent_body and "json" not in content_type
        else "The request has invalid or unknown fields; see errors."
    )
    return problem_response(
        request,
        status=422,
        code="validation_error",
        title=ValidationFailed.title,
        detail=detail,
        members={"errors": _validation_errors(exc)},
    )


_HTTP_CODES = {
    # Starlette/FastAPI raise 400 only for a body they cannot parse: that is a malformed body (422).
    400: ("validation_error", ValidationFailed.title),
    401: ("unauthorized", Unauthorized.title),
    403: ("forbidden", Forbidden.title),
    404: ("not_found", NotFound.title),
    405: ("method_not_allowed", MethodNotAllowed.title),
    413: ("payload_too_large", PayloadTooLarge.title),
    415: ("unsupported_media_type", "Unsupported media type"),
}


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    status = 422 if exc.status_code == 400 else exc.status_code
    return problem_response(
        request,
        status=status,
        code=code,
        title=title,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


def error_for_integrity(exc: IntegrityError) -> DomainError | None:
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    error_class = CONSTRAINT_ERRORS.get(constraint or "")
    if error_class is None:
        return None
    return error_class(f"Constraint {constraint} would be violated.")


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IntegrityError)
    error = error_for_integrity(exc)
    if error is None:
        return await _unexpected(request, exc)
    return render(request, error)


# SQLSTATEs that mean "try again": serialization failure, deadlock, statement cancelled or timed out.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    sqlstate = _sqlstate(exc)
    if isinstance(exc, DataError) or sqlstate.startswith("22"):
        # A value the database cannot take (a NUL character, an out-of-range number): the client's
        # input, so a 422 it can fix, not a 5xx it would retry forever. Logged, in case it is ours.
        _log_database_error(request, exc, "database rejected a value", logging.WARNING)
        return render(request, ValidationFailed("A value in the request cannot be stored or compared."))
    if sqlstate in RETRYABLE_SQLSTATES:
        _log_database_error(request, exc, "retryable database error", logging.WARNING)
        response = render(request, ServiceUnavailable("A concurrent change interfered; retry the request."))
        response.headers["Retry-After"] = "1"
        return response
    if exc.connection_invalidated or sqlstate.startswith("08"):
        # The connection was lost (database restarted, network): the pool has dropped it; a retry
        # gets a fresh one. Nothing of this request was committed.
        _log_database_error(request, exc, "database connection lost", logging.WARNING)
        response = render(request, ServiceUnavailable("The database connection was lost; retry the request."))
        response.headers["Retry-After"] = "1"
        return response
    _log_database_error(request, exc, "database error", logging.ERROR)
    return render(request, ServiceUnavailable("The database could not complete the request."))


async def _pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    # Every pooled connection is busy: the service is overloaded, not broken. Not a DBAPIError (the
    # database was never asked), so without this handler it fell through to the catch-all 500.
    log.warning("database pool exhausted", extra={"request_id": request_id_of(request)})
    response = render(request, ServiceUnavailable("The service is busy; retry the request."))
    response.headers["Retry-After"] = "1"
    return response


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


def _log_database_error(request: Request, exc: DBAPIError, message: str, level: int) -> None:
    """Log a database failure without its message: PostgreSQL quotes offending values there
    ("Key (…)=(…) already exists", "value "…" is out of range"), and values will be ID numbers.
    The SQL text, SQLSTATE, constraint and call site are enough to find the cause."""
    diag = getattr(exc.orig, "diag", None)
    log.log(
        level,
        message,
        extra={
            "request_id": request_id_of(request),
            "sqlstate": _sqlstate(exc),
            "error": type(exc.orig).__name__,
            "constraint": getattr(diag, "constraint_name", None),
            "statement": (exc.statement or "")[:500],
            "where": "".join(traceback.format_tb(exc.__traceback__, limit=-3)),
        },
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log only; the client gets a generic detail and the request id to quote.
    if isinstance(exc, DBAPIError):
        _log_database_error(request, exc, "unhandled database error", logging.ERROR)
    else:
        log.exception("unhandled error", extra={"request_id": request_id_of(request)})
    return render(request, InternalError("An unexpected error occurred; quote the request_id."))


render_unexpected = _unexpected


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _pool_exhausted)
    app.add_exception_handler(Exception, _unexpected)
