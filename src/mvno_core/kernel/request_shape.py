"""Request shape rules that hold for every route: no unknown query parameters, and ``Allow`` on
``OPTIONS`` and 405 answers.

Unknown query parameters are refused for the same reason unknown body fields are: a misspelt filter
(``?stauts=available``) or a parameter the route does not have (``?after=`` on a list that pages with
``?cursor=``) would otherwise be silently ignored and the client would get a different list than it asked
for, with no sign of it.

``Allow`` must list every method of the path. Starlette answers a 405 from the *first* route whose path
matches, so on a path served by several routes (``GET`` and ``PATCH /v1/mvnos/{id}``) its ``Allow`` names
only one of them; the middleware below asks every route instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mvno_core.kernel.problems import ValidationFailed

_DECLARED_QUERY_ATTR = "_declared_query_params"


def declared_query_params(route: APIRoute) -> frozenset[str]:
    """The query parameter names a route declares (its own and its dependencies'), computed once."""
    cached: frozenset[str] | None = getattr(route, _DECLARED_QUERY_ATTR, None)
    if cached is None:
        cached = frozenset(_query_aliases(route.dependant))
        setattr(route, _DECLARED_QUERY_ATTR, cached)
    return cached


def _query_aliases(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_aliases(sub)
    return names


async def reject_unknown_query_params(request: Request) -> None:
    """Route dependency (added to every ``ApiRoute``): 422 ``validation_error`` naming each unknown one."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = declared_query_params(route)
    unknown = sorted({name for name in request.query_params if name not in declared})
    if unknown:
        error = ValidationFailed("Unknown query parameter(s): " + ", ".join(unknown) + ".")
        error.members["errors"] = [
            {"loc": ["query", name], "msg": "Unknown query parameter."} for name in unknown
        ]
        raise error


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route fully matches on this request's path (empty if no route has the path).

    Routes are asked per method rather than for their ``methods``: FastAPI nests included routers, and
    only ``matches`` looks through them. A path that a route names literally (``/v1/subscribers/search``)
    is that route's alone, even where a template would also match it (``/v1/subscribers/{id}``): the
    documented literal paths narrow the answer (FastAPI's nested matches do not tell which matched)."""
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    literal = _literal_paths(scope["app"]).get(scope["path"])
    if literal is not None:
        allowed = [method for method in allowed if method in literal]
    return [*allowed, "OPTIONS"] if allowed else []


def _literal_paths(app: Any) -> dict[str, frozenset[str]]:
    """Documented paths without parameters → their methods (from the app's cached OpenAPI)."""
    cached: dict[str, frozenset[str]] | None = getattr(app.state, "literal_paths", None)
    if cached is None:
        cached = {
            path: frozenset(method.upper() for method in operations)
            for path, operations in app.openapi().get("paths", {}).items()
            if "{" not in path
        }
        app.state.literal_paths = cached
    return cached


class AllowHeaderMiddleware:
    """``OPTIONS`` on a known path → 204 with ``Allow``; every 405 carries the path's full ``Allow``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        routes: list[BaseRoute] = scope["app"].routes
        if scope["method"] == "OPTIONS":
            allow = allowed_methods(routes, scope)
            if allow:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 204,
                        "headers": [(b"allow", ", ".join(allow).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allow = ", ".join(allowed_methods(routes, scope)).encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message["headers"] = [*headers, (b"allow", allow)]
            await send(message)

        await self.app(scope, receive, send_with_allow)
