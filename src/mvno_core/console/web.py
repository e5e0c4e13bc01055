"""The console's request boundary: session, CSRF, one transaction per request, rendering.

Pages and actions run on the same services as the API, in a ``RequestContext`` built by the kernel's
``new_context`` for the signed-in key's principal, inside one transaction committed before the response
(as ``ApiRoute`` does), with the kernel's regulator rule (``ensure_may_write``) enforced here on the
server, whatever the page shows. A failed action shows the problem's ``detail``, never a traceback.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mvno_core.auth import service as auth_service
from mvno_core.console import sessions
from mvno_core.console.i18n import STRINGS, language_of
from mvno_core.console.sessions import ConsoleSession
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import DomainError, Forbidden, ValidationFailed, error_for_integrity
from mvno_core.kernel.routing import ensure_may_write, new_context, read_body_limited
from mvno_core.lines.lifecycle import REASON_TEXTS, HoldReason

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mvno_core.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Nothing from another host, no inline script, no framing by another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_FLASH = 600
# A cancellation has four kinds of blocker (cancellations/rules.py); the bounds keep the cookie small.
MAX_BLOCKERS = 8
MAX_BLOCKER_VALUE = 64

Form = dict[str, str]
Loader = Callable[[RequestContext, Form], Awaitable[dict[str, Any]]]
Action = Callable[[RequestContext, Form], Awaitable[object]]
Handler = Callable[[Request, Any], Response | Awaitable[Response]]
# Headers of the kernel's problem answer a page keeps (when to retry; which methods the path takes).
KEPT_PROBLEM_HEADERS = ("retry-after", "allow")


class SessionEnded(Exception):
    """The session's key was revoked, deleted or changed role: sign in again."""


def _now(request: Request) -> Any:
    return request.app.state.clock.now()


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    session: ConsoleSession | None = None,
    **values: Any,
) -> HTMLResponse:
    lang = language_of(request.cookies.get(sessions.LANG_COOKIE))
    flash = _read_flash(request)
    # Where the language switch comes back to (query included: the number searched stays shown).
    query = request.url.query if request.method == "GET" else ""
    values.setdefault("error", None)
    values.setdefault("form", {})
    # A page that follows a running job reloads itself this often (seconds); None: never.
    values.setdefault("refresh_seconds", None)
    html = ENV.get_template(template).render(
        t=STRINGS[lang],
        lang=lang,
        session=session,
        can_write=session is not None and session.role == Role.OPERATOR.value,
        here=request.url.path + (f"?{query}" if query else ""),
        reason_texts=REASON_TEXTS,
        hold_reasons=list(HoldReason),
        flash=flash,
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if flash is not None:
        sessions.clear_cookie(request, response, sessions.FLASH_COOKIE)
    return response


def _read_flash(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(sessions.FLASH_COOKIE)
    if not raw:
        return None
    try:
        kind, text, *rest = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        blockers = [
            {str(name): str(value)[:MAX_BLOCKER_VALUE] for name, value in dict(blocker).items()}
            for blocker in (rest[0] if rest else [])[:MAX_BLOCKERS]
        ]
    except (ValueError, TypeError):
        return None
    return {"kind": str(kind), "text": str(text)[:MAX_FLASH], "blockers": blockers}


def _flash(
    request: Request, response: Response, kind: str, text: str, blockers: list[Any] | None = None
) -> None:
    """A one-shot message for the page the action redirects to (rendered escaped, like all text),
    with a refused cancellation's blockers, so the page lists every one of them together."""
    message = [kind, text[:MAX_FLASH], (blockers or [])[:MAX_BLOCKERS]]
    value = base64.urlsafe_b64encode(json.dumps(message, default=str).encode()).decode().rstrip("=")
    sessions.set_cookie(request, response, sessions.FLASH_COOKIE, value)


def problem_page(
    request: Request,
    session: ConsoleSession | None,
    status: int,
    title: str,
    detail: str,
    *,
    request_id: str | None = None,
) -> Response:
    return render(
        request,
        "problem.html",
        status=status,
        session=session,
        title=title,
        detail=detail,
        request_id=request_id,
    )


def _kernel_handler(app: FastAPI, exc: Exception) -> Handler:
    """The app's own problem handler for this exception (most specific class first), so a page says
    what the API would: same status, title, detail and request id, logged the same way."""
    for cls in type(exc).__mro__:
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler
    raise exc  # unreachable: the kernel registers a handler for Exception


async def failure_page(request: Request, exc: Exception, handler: Handler | None = None) -> Response:
    """Any failure under /console as an HTML problem page: the kernel decides the problem (and logs
    the traceback of an unexpected one), the page shows its title, detail and request id, never a
    traceback and never the API's JSON."""
    answer = (handler or _kernel_handler(request.app, exc))(request, exc)
    if inspect.isawaitable(answer):
        answer = await answer
    problem = json.loads(bytes(answer.body))
    session = None
    # The session only decides whether the page has the navigation; a failure reading it (the very
    # failure being shown, say a broken signing key) must not hide the page.
    with contextlib.suppress(Exception):
        session = sessions.read_session(request, _now(request))
    response = problem_page(
        request,
        session,
        answer.status_code,
        str(problem.get("title", "")),
        str(problem.get("detail", "")),
        request_id=problem.get("request_id"),
    )
    for name in KEPT_PROBLEM_HEADERS:
        if name in answer.headers:
            response.headers[name] = answer.headers[name]
    return response


class ConsoleRoute(APIRoute):
    """A console route: whatever escapes the page (a database refusal, a bad query parameter, a bug)
    is answered with a problem page rather than the API's problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return await failure_page(request, exc)

        return guarded


def install_error_pages(app: FastAPI) -> None:
    """No console route matched (unknown page, wrong method): under /console, a page as well."""
    kernel = _kernel_handler(app, StarletteHTTPException(404))

    async def http_error(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if path == sessions.PATH or path.startswith(sessions.PATH + "/"):
            return await failure_page(request, exc, kernel)
        answer = kernel(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, http_error)


def to_login(request: Request, *, ended: bool) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    if ended:
        sessions.clear_cookie(request, response, sessions.COOKIE)
        _flash(request, response, "error", STRINGS[_lang(request)]["session_ended"])
    return response


def _lang(request: Request) -> str:
    return language_of(request.cookies.get(sessions.LANG_COOKIE))


async def read_form(request: Request) -> Form:
    """An urlencoded form (the console's only kind), under the API's body cap; last value wins."""
    body = await read_body_limited(request, request.app.state.settings.max_body_bytes)
    try:
        parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=50)
    except ValueError:  # more fields than any console form has: treated as no form (no CSRF token → 403)
        return {}
    return {name: values[-1] for name, values in parsed.items()}


def validation_detail(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc'])}: {str(err['msg']).removeprefix('Value error, ')}"
        for err in exc.errors()
    )


# Who may sign in: the operator and the regulator. Partners use the API; a recycling platform's key is
# for the number-recycling check only.
CONSOLE_ROLES = frozenset({Role.OPERATOR, Role.REGULATOR})


@asynccontextmanager
async def console_context(request: Request, session: ConsoleSession) -> AsyncIterator[RequestContext]:
    """One transaction, the signed-in key's principal (re-read: a revoked key ends the session), the
    regulator's read-only rule; committed when the block ends, before any response is built."""
    async with request.app.state.db.transaction() as db_session:
        principal = await auth_service.principal_by_id(db_session, session.key_id)
        if principal is None or principal.role not in CONSOLE_ROLES or principal.role.value != session.role:
            raise SessionEnded
        ensure_may_write(principal, request.method, request.url.path)
        try:
            yield new_context(request, db_session, principal)
        except IntegrityError as exc:
            error = error_for_integrity(exc)
            if error is None:
                raise
            raise error from exc


async def page(
    request: Request, template: str, load: Loader, *, defaults: dict[str, Any] | None = None
) -> Response:
    """A page: GET, or a POST that only reads (一证通查, whose ID number must not travel in a URL);
    when that POST fails, the page is shown with ``defaults`` and the problem's detail."""
    now = _now(request)
    session = sessions.read_session(request, now)
    form: Form = {}
    if request.method == "POST":
        form = await read_form(request)
    if session is None:
        return to_login(request, ended=sessions.COOKIE in request.cookies)
    if request.method == "POST" and not sessions.token_matches(session.csrf, form.get("csrf")):
        return problem_page(
            request,
            session,
            403,
            STRINGS[_lang(request)]["forbidden"],
            STRINGS[_lang(request)]["csrf_refused"],
        )
    error: str | None = None
    try:
        async with console_context(request, session) as ctx:
            values = await load(ctx, form)
    except SessionEnded:
        return to_login(request, ended=True)
    except ValidationError as exc:
        values, error = dict(defaults or {}), validation_detail(exc)
    except DomainError as exc:
        if request.method == "GET" or isinstance(exc, Forbidden):
            return problem_page(request, session, exc.status, exc.title, exc.detail)
        values, error = dict(defaults or {}), exc.detail
    response = render(request, template, session=session, error=error, form=form, **values)
    sessions.write_session(request, response, replace(session, last_seen=now))
    return response


async def act(request: Request, action: Action, back: str) -> Response:
    """A change: CSRF checked, run in one transaction, then back to ``back`` (303) with its outcome."""
    now = _now(request)
    form = await read_form(request)
    session = sessions.read_session(request, now)
    if session is None:
        return to_login(request, ended=sessions.COOKIE in request.cookies)
    t = STRINGS[_lang(request)]
    if not sessions.token_matches(session.csrf, form.get("csrf")):
        return problem_page(request, session, 403, t["forbidden"], t["csrf_refused"])
    try:
        async with console_context(request, session) as ctx:
            await action(ctx, form)
    except SessionEnded:
        return to_login(request, ended=True)
    except Forbidden as exc:
        return problem_page(request, session, exc.status, exc.title, exc.detail)
    except ValidationError as exc:
        return _back(request, session, back, "error", validation_detail(exc), now)
    except DomainError as exc:
        blockers = exc.members.get("blockers")
        return _back(request, session, back, "error", exc.detail, now, blockers=blockers)
    return _back(request, session, back, "ok", t["done"], now)


def _back(
    request: Request,
    session: ConsoleSession,
    back: str,
    kind: str,
    text: str,
    now: Any,
    *,
    blockers: list[Any] | None = None,
) -> Response:
    response = RedirectResponse(back, status_code=303)
    _flash(request, response, kind, text, blockers)
    sessions.write_session(request, response, replace(session, last_seen=now))
    return response


def optional(form: Form, name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


# Yuan as a cashier types them: whole yuan, or yuan and jiao/fen (12, 12.5, 12.50).
YUAN = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,2})?$")


def fen_of(form: Form, name: str) -> int | None:
    """An optional amount typed in yuan, as the API's integer fen (exact: no float on the way)."""
    value = optional(form, name)
    if value is None:
        return None
    if not YUAN.match(value):
        raise ValidationFailed(f"{name} is an amount in yuan, e.g. 12.50.", loc=("body", name))
    return int(Decimal(value) * 100)


def bounded(value: str | None, name: str, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        raise ValidationFailed(f"{name} is at most {limit} characters.", loc=("query", name))
    return value
