"""The operator console's pages (/console): HTML over the same services as the API.

Every data read and change goes through the domain services with the signed-in key's principal
(``web.page`` / ``web.act``), so the audit entries, events and rules are the API's own.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from mvno_core.audit import service as audit
from mvno_core.audit.journal import Subject, record
from mvno_core.auth import service as auth_service
from mvno_core.blocks import service as blocks
from mvno_core.cancellations import service as cancellations
from mvno_core.cancellations.schemas import CancellationCreate
from mvno_core.console import sessions, web
from mvno_core.console.i18n import LANGUAGES, STRINGS
from mvno_core.console.web import Form
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import Unauthorized
from mvno_core.kernel.routing import new_context
from mvno_core.lines import holds
from mvno_core.lines import service as lines
from mvno_core.lines.lifecycle import HoldReason, LineStatus, may_lift, may_place
from mvno_core.lines.schemas import DisputeCreate, HoldCreate, HoldLift
from mvno_core.mvnos import service as mvnos
from mvno_core.mvnos.schemas import MvnoReinstate, MvnoRestrict
from mvno_core.numbers import msisdn as msisdns
from mvno_core.numbers import service as numbers
from mvno_core.reference.data import PROVINCES
from mvno_core.reservations import service as reservations
from mvno_core.subscribers import service as subscribers
from mvno_core.subscribers.idcheck import IdType
from mvno_core.subscribers.lifecycle import VerificationMethod
from mvno_core.subscribers.schemas import IdentityQuery
from mvno_core.takeovers import service as takeovers

router = APIRouter(prefix="/console", include_in_schema=False, route_class=web.ConsoleRoute)

CSS = resources.files("mvno_core.console").joinpath("static/console.css").read_bytes()
HISTORY_LIMIT = 200
# The audit page shows the newest entries of its filter (the API pages through all of them).
AUDIT_PAGE = 100
# How often a page showing a running takeover reloads itself (the worker commits a batch at a time).
TAKEOVER_REFRESH_SECONDS = 3


@router.get("/static/console.css")
async def stylesheet() -> Response:
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("")
async def home() -> Response:
    return RedirectResponse("/console/numbers", status_code=303)


@router.get("/lang/{lang}")
async def switch_language(request: Request, lang: str, next: str = "/console/numbers") -> Response:
    # Only a console path: never a redirect to another site.
    target = next if next.startswith("/console") and not next.startswith("//") else "/console/numbers"
    response = RedirectResponse(target, status_code=303)
    if lang in LANGUAGES:
        sessions.set_cookie(request, response, sessions.LANG_COOKIE, lang)
    return response


# --- sign-in ------------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


def _login_page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    pre = request.cookies.get(sessions.PRE_COOKIE) or sessions.new_session("", "", web._now(request)).csrf
    response = web.render(
        request, "login.html", status=status, error=error, csrf=sessions.login_csrf(request, pre)
    )
    sessions.set_cookie(request, response, sessions.PRE_COOKIE, pre)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await web.read_form(request)
    t = STRINGS[web._lang(request)]
    pre = request.cookies.get(sessions.PRE_COOKIE, "")
    if not pre or not sessions.token_matches(sessions.login_csrf(request, pre), form.get("csrf")):
        return web.problem_page(request, None, 403, t["forbidden"], t["csrf_refused"])
    secret = form.get("api_key", "").strip()[:200]
    try:
        async with request.app.state.db.transaction() as db_session:
            principal = await request.app.state.authenticate(db_session, f"Bearer {secret}")
            if principal.role in web.CONSOLE_ROLES:
                await _journal(new_context(request, db_session, principal), "console.signed_in")
    except Unauthorized:
        return _login_page(request, status=401, error=t["key_refused"])
    if principal.role is Role.PARTNER:
        return _login_page(request, status=403, error=t["partner_refused"])
    if principal.role not in web.CONSOLE_ROLES:
        return _login_page(request, status=403, error=t["platform_refused"])
    now = web._now(request)
    response = RedirectResponse("/console/numbers", status_code=303)
    sessions.write_session(
        request, response, sessions.new_session(principal.key_id, principal.role.value, now)
    )
    sessions.clear_cookie(request, response, sessions.PRE_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await web.read_form(request)
    session = sessions.read_session(request, web._now(request))
    if session is not None and not sessions.token_matches(session.csrf, form.get("csrf")):
        t = STRINGS[web._lang(request)]
        return web.problem_page(request, session, 403, t["forbidden"], t["csrf_refused"])
    if session is not None:
        async with request.app.state.db.transaction() as db_session:
            principal = await auth_service.principal_by_id(db_session, session.key_id)
            if principal is not None:
                await _journal(new_context(request, db_session, principal), "console.signed_out")
    response = RedirectResponse("/console/login", status_code=303)
    sessions.clear_cookie(request, response, sessions.COOKIE)
    return response


async def _journal(ctx: RequestContext, action: str) -> None:
    """Who used the console, and when: sign-in and sign-out are audited (no event: nothing changed
    for the feed's readers)."""
    await record(
        ctx,
        action=action,
        subject=Subject("api_key", ctx.principal.key_id),
        mvno_id=None,
        data={"role": ctx.principal.role.value},
    )


# --- number and line ----------------------------------------------------------------------------


async def _history(
    ctx: RequestContext, line_ids: list[str], subjects: list[tuple[str, str]] | None = None
) -> list[Any]:
    """Newest first: the entries about these lines, their disputes and cancellations, and any other
    subjects given (a number and its reservations)."""
    related = [
        *(subjects or []),
        *(("line", line_id) for line_id in line_ids),
        *(("dispute", ident) for ident in await lines.dispute_ids(ctx, line_ids)),
        *(("cancellation", ident) for ident in await cancellations.ids_for_lines(ctx, line_ids)),
    ]
    return await audit.entries_for_subjects(ctx, related, limit=HISTORY_LIMIT)


@router.get("/numbers")
async def number_page(request: Request, msisdn: str | None = None) -> Response:
    async def load(ctx: RequestContext, _: Form) -> dict[str, Any]:
        if not msisdn:
            return {"number": None, "query": ""}
        normalised = msisdns.normalise(msisdn[:32], loc=("query", "msisdn"))
        number = await numbers.get_visible(ctx, normalised)
        mvno = await mvnos.get_visible(ctx, number.mvno_id)
        on_number = await lines.list_visible(
            ctx, mvno_id=None, status=None, subscriber_id=None, msisdn=normalised, after_id=None, limit=50
        )
        return {
            "number": number,
            "mvno": mvno,
            "lines": on_number,
            "history": await _history(
                ctx,
                [line.id for line in on_number],
                [
                    ("number", normalised),
                    *(("reservation", ident) for ident in await reservations.ids_for_number(ctx, normalised)),
                ],
            ),
            "query": normalised,
        }

    return await web.page(request, "number.html", load)


@router.get("/lines/{line_id}")
async def line_page(request: Request, line_id: str) -> Response:
    async def load(ctx: RequestContext, _: Form) -> dict[str, Any]:
        line = await lines.get_visible(ctx, line_id[:40])
        role = ctx.principal.role
        home, blockers = "", list[dict[str, Any]]()
        if line.status is not LineStatus.CANCELLED:
            home, blockers = await cancellations.standing_blockers(ctx, line)
        return {
            "line": line,
            "mvno": await mvnos.get_visible(ctx, line.mvno_id),
            "holds": await holds.list_holds(ctx, line.id),
            "history": await _history(ctx, [line.id]),
            "placeable": [reason for reason in HoldReason if may_place(role, reason)],
            "liftable": {reason for reason in HoldReason if may_lift(role, reason)},
            "home_province": home,
            "standing_blockers": blockers,
            "provinces": PROVINCES,
            "methods": list(VerificationMethod),
        }

    return await web.page(request, "line.html", load)


@router.post("/lines/{line_id}/holds")
async def place_hold(request: Request, line_id: str) -> Response:
    async def run(ctx: RequestContext, form: Form) -> object:
        body = HoldCreate.model_validate(
            {"reason": form.get("reason", ""), "note": web.optional(form, "note")}
        )
        return await holds.place(ctx, line_id, body.reason, body.note)

    return await web.act(request, run, f"/console/lines/{quote(line_id)}")


@router.post("/lines/{line_id}/holds/{hold_id}/lift")
async def lift_hold(request: Request, line_id: str, hold_id: str) -> Response:
    async def run(ctx: RequestContext, form: Form) -> object:
        body = HoldLift.model_validate({"note": web.optional(form, "note")})
        return await holds.lift(ctx, line_id, hold_id, body.note)

    return await web.act(request, run, f"/console/lines/{quote(line_id)}")


@router.post("/lines/{line_id}/cancellations")
async def cancel_line(request: Request, line_id: str) -> Response:
    async def run(ctx: RequestContext, form: Form) -> object:
        body = CancellationCreate.model_validate(
            {
                "requested_province": form.get("requested_province", ""),
                "identity_check": {
                    "method": form.get("identity_method", ""),
                    "result": form.get("identity_result", ""),
                },
                "arrears_paid_fen": web.fen_of(form, "arrears_paid_yuan"),
                # An unticked checkbox is not sent at all.
                "accept_contract_penalty": "accept_contract_penalty" in form,
            }
        )
        return await cancellations.cancel(ctx, line_id, body)

    return await web.act(request, run, f"/console/lines/{quote(line_id)}")


@router.post("/lines/{line_id}/disputes")
async def open_dispute(request: Request, line_id: str) -> Response:
    async def run(ctx: RequestContext, form: Form) -> object:
        body = DisputeCreate.model_validate({"note": web.optional(form, "note")})
        return await lines.open_dispute(ctx, line_id, body.note)

    return await web.act(request, run, f"/console/lines/{quote(line_id)}")


# --- 一证通查 -------------------------------------------------------------------------------------


@router.get("/lookup")
async def lookup_form(request: Request) -> Response:
    async def load(ctx: RequestContext, _: Form) -> dict[str, Any]:
        return {"result": None, "id_types": list(IdType)}

    return await web.page(request, "lookup.html", load)


@router.post("/lookup")
async def lookup(request: Request) -> Response:
    async def load(ctx: RequestContext, form: Form) -> dict[str, Any]:
        query = IdentityQuery.model_validate(
            {"id_type": form.get("id_type", ""), "id_number": form.get("id_number", "")}
        )
        return {"result": await subscribers.identity_lookup(ctx, query), "id_types": list(IdType)}

    return await web.page(request, "lookup.html", load, defaults={"result": None, "id_types": list(IdType)})


# --- MVNOs ----------------------------------------------------------------------------------------


@router.get("/mvnos")
async def mvno_list(request: Request) -> Response:
    async def load(ctx: RequestContext, _: Form) -> dict[str, Any]:
        return {"mvnos": await mvnos.list_visible(ctx, after_id=None, limit=500)}

    return await web.page(request, "mvnos.html", load)


@router.get("/mvnos/{mvno_id}")
async def mvno_page(request: Request, mvno_id: str) -> Response:
    async def load(ctx: RequestContext, _: Form) -> dict[str, Any]:
        mvno = await mvnos.get_visible(ctx, mvno_id[:40])
        moves = await takeovers.list_for_mvno(ctx, mvno.id)
        return {
            "mvno": mvno,
            "blocks": await blocks.list_visible(
                ctx, mvno_id=mvno.id, segment=None, province=None, after_prefix=None, limit=1000
            ),
            "line_counts": await lines.status_counts(ctx, mvno.id),
            "takeovers": moves,
            "names": await _mvno_names(ctx, {m for t in moves for m in (t.from_mvno_id, t.to_mvno_id)}),
            "refresh_seconds": TAKEOVER_REFRESH_SECONDS,
        }

    return await web.page(request, "mvno.html", load)


@router.get("/takeovers/{takeover_id}")
async def takeover_page(request: Request, takeover_id: str) -> Response:
    """A takeover's progress, re-read every few seconds while it runs (a meta refresh: no script)."""

    async def load(ctx: RequestContext, _: Form) -> dict[str, Any]:
        takeover = await takeovers.get_visible(ctx, takeover_id[:40])
        running = takeover.status == "running"
        return {
            "takeover": takeover,
            "names": await _mvno_names(ctx, {takeover.from_mvno_id, takeover.to_mvno_id}),
            "refresh_seconds": TAKEOVER_REFRESH_SECONDS if running else None,
        }

    return await web.page(request, "takeover.html", load)


async def _mvno_names(ctx: RequestContext, mvno_ids: set[str]) -> dict[str, str]:
    return {mvno_id: (await mvnos.get_visible(ctx, mvno_id)).name for mvno_id in sorted(mvno_ids)}


@router.post("/mvnos/{mvno_id}/restrict")
async def restrict(request: Request, mvno_id: str) -> Response:
    async def run(ctx: RequestContext, form: Form) -> object:
        ctx.principal.ensure_operator()
        body = MvnoRestrict.model_validate({"reason": form.get("reason", "")})
        return await mvnos.restrict(ctx, mvno_id, body.reason)

    return await web.act(request, run, f"/console/mvnos/{quote(mvno_id)}")


@router.post("/mvnos/{mvno_id}/reinstate")
async def reinstate(request: Request, mvno_id: str) -> Response:
    async def run(ctx: RequestContext, form: Form) -> object:
        ctx.principal.ensure_operator()
        body = MvnoReinstate.model_validate({"note": web.optional(form, "note")})
        return await mvnos.reinstate(ctx, mvno_id, note=body.note)

    return await web.act(request, run, f"/console/mvnos/{quote(mvno_id)}")


# --- audit ----------------------------------------------------------------------------------------


@router.get("/audit")
async def audit_page(
    request: Request, subject_kind: str | None = None, subject_id: str | None = None, verify: bool = False
) -> Response:
    async def load(ctx: RequestContext, _: Form) -> dict[str, Any]:
        kind = web.bounded(subject_kind or None, "subject_kind", 32)
        ident = web.bounded(subject_id or None, "subject_id", 64)
        entries = await audit.list_entries(
            ctx, subject_kind=kind, subject_id=ident, after_id=None, limit=AUDIT_PAGE, newest_first=True
        )
        return {
            "entries": entries,
            "subject_kind": kind or "",
            "subject_id": ident or "",
            "verification": await _verify(request, ctx) if verify else None,
        }

    return await web.page(request, "audit.html", load)


async def _verify(request: Request, ctx: RequestContext) -> audit.Verification | str:
    """``GET /v1/audit/verify``'s service, one at a time, never queued (the API's rule)."""
    state = request.app.state
    lock: asyncio.Lock = state.verify_lock
    if lock.locked():
        return "busy"
    async with lock:
        result = await audit.verify_anchored(
            ctx.session,
            state.db,
            state.audit_keyring,
            state.clock,
            full=False,
            kept=None,
            batch=ctx.settings.audit_sequencer_batch,
        )
    return result if result is not None else "busy"
