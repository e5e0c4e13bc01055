"""The console over plain HTTP (no web): sign-in, cookie flags, CSRF, idle timeout on the fake clock,
the regulator's read-only rule enforced by the server, and actions that write the API's own audit
entries and events."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi.routing import APIRoute

from mvno_core.console.i18n import STRINGS
from mvno_core.console.router import router as console_router
from mvno_core.events import sequencer
from mvno_core.kernel.db import Database
from tests import factories
from tests.conftest import ShiftableClock
from tests.console.conftest import Desk, page_token, sign_in


def test_both_languages_have_the_same_strings() -> None:
    assert STRINGS["zh"].keys() == STRINGS["en"].keys()
    assert all(STRINGS["zh"][key] for key in STRINGS["zh"])


async def test_session_cookie_flags(web: httpx.AsyncClient, desk: Desk, app: object) -> None:
    signed_in = await sign_in(web, desk.operator)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/console/numbers"
    cookie = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith("mvno_console="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/console"} <= flags
    assert "secure" not in flags  # plain http on a loopback test server
    # The cookie names the key, never its secret.
    assert desk.operator not in cookie

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as tls:
        over_https = await sign_in(tls, desk.operator)
    cookie = next(c for c in over_https.headers.get_list("set-cookie") if c.startswith("mvno_console="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


async def test_sign_in_and_out_are_audited(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk, db: Database
) -> None:
    secret = await factories.create_key(db, role="regulator")
    await sign_in(web, secret)
    _, token = await page_token(web, "/console/numbers")
    signed_out = await web.post("/console/logout", data={"csrf": token})
    assert signed_out.headers["location"] == "/console/login"
    assert (await web.get("/console/numbers")).headers["location"] == "/console/login"
    keys = (await client.get("/v1/api-keys?limit=200", headers=Desk.bearer(desk.operator))).json()["items"]
    key_id = next(k["id"] for k in keys if secret.startswith(k["hint"]))
    entries = (
        await client.get(
            f"/v1/audit?subject_kind=api_key&subject_id={key_id}", headers=Desk.bearer(desk.operator)
        )
    ).json()["items"]
    assert [(e["action"], e["actor"]["key_id"]) for e in entries] == [
        ("console.signed_in", key_id),
        ("console.signed_out", key_id),
    ]


async def test_partner_and_unknown_keys_cannot_sign_in(web: httpx.AsyncClient, desk: Desk) -> None:
    refused = await sign_in(web, desk.partner)
    assert refused.status_code == 403
    assert STRINGS["zh"]["partner_refused"] in refused.text
    assert "mvno_console" not in web.cookies
    unknown = await sign_in(web, "mvk_not-a-key")
    assert unknown.status_code == 401
    assert (await web.get("/console/numbers")).headers["location"] == "/console/login"


async def test_forms_without_their_csrf_token_are_refused(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk
) -> None:
    login = await web.get("/console/login")
    assert login.status_code == 200
    no_token = await web.post("/console/login", data={"api_key": desk.operator})
    assert no_token.status_code == 403
    assert "mvno_console" not in web.cookies

    await sign_in(web, desk.operator)
    path = f"/console/lines/{desk.line_id}/holds"
    for data in ({"reason": "user_request"}, {"reason": "user_request", "csrf": "forged"}):
        refused = await web.post(path, data=data)
        assert refused.status_code == 403
        assert STRINGS["zh"]["csrf_refused"] in refused.text
    holds = await client.get(f"/v1/lines/{desk.line_id}/holds", headers=Desk.bearer(desk.operator))
    assert holds.json()["items"] == []
    # Signing out needs the token too.
    assert (await web.post("/console/logout", data={})).status_code == 403


async def test_idle_timeout_on_the_clock(web: httpx.AsyncClient, desk: Desk, clock: ShiftableClock) -> None:
    await sign_in(web, desk.operator)
    # Activity keeps the session alive: two 20-minute gaps, each under the 30-minute idle limit.
    for _ in range(2):
        clock.advance(minutes=20)
        assert (await web.get("/console/numbers")).status_code == 200
    clock.advance(minutes=31)
    expired = await web.get("/console/numbers")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/console/login"
    login = await web.get("/console/login")
    assert STRINGS["zh"]["session_ended"] in login.text


async def test_regulator_reads_but_cannot_write(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk
) -> None:
    await sign_in(web, desk.regulator)
    line_page, token = await page_token(web, f"/console/lines/{desk.line_id}")
    assert desk.msisdn in line_page.text
    assert 'id="place-hold"' not in line_page.text
    assert "/disputes" not in line_page.text
    mvno_page = await web.get(f"/console/mvnos/{desk.mvno_id}")
    assert "/restrict" not in mvno_page.text

    # A forged POST with a valid token: the server refuses it, the page did not just hide the button.
    forged = await web.post(
        f"/console/lines/{desk.line_id}/holds", data={"csrf": token, "reason": "user_request"}
    )
    assert forged.status_code == 403
    restrict = await web.post(f"/console/mvnos/{desk.mvno_id}/restrict", data={"csrf": token, "reason": "x"})
    assert restrict.status_code == 403
    holds = await client.get(f"/v1/lines/{desk.line_id}/holds", headers=Desk.bearer(desk.operator))
    assert holds.json()["items"] == []
    mvno = await client.get(f"/v1/mvnos/{desk.mvno_id}", headers=Desk.bearer(desk.operator))
    assert mvno.json()["status"] == "active"

    # 一证通查 is a read: the regulator may run it (a POST, so the ID number never sits in a URL).
    lookup = await web.post(
        "/console/lookup", data={"csrf": token, "id_type": "resident_id", "id_number": desk.id_number}
    )
    assert lookup.status_code == 200
    assert f"{desk.msisdn[:3]}****{desk.msisdn[-4:]}" in lookup.text
    assert desk.id_number not in lookup.text
    assert "/disputes" not in lookup.text  # no "not my card" button for the regulator


async def test_holds_through_the_console_are_the_apis_own(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk, db: Database
) -> None:
    await sign_in(web, desk.operator)
    _, token = await page_token(web, f"/console/lines/{desk.line_id}")
    placed = await web.post(
        f"/console/lines/{desk.line_id}/holds", data={"csrf": token, "reason": "user_request", "note": "午休"}
    )
    assert placed.status_code == 303
    line_page = await web.get(placed.headers["location"])
    assert "用户申请停机" in line_page.text
    assert "status-suspended" in line_page.text

    operator = Desk.bearer(desk.operator)
    line = (await client.get(f"/v1/lines/{desk.line_id}", headers=operator)).json()
    assert line["status"] == "suspended"
    assert line["open_holds"] == ["user_request"]
    entries = (
        await client.get(f"/v1/audit?subject_kind=line&subject_id={desk.line_id}", headers=operator)
    ).json()["items"]
    placed_entry = next(e for e in entries if e["action"] == "hold.placed")
    assert placed_entry["actor"]["role"] == "operator"
    assert placed_entry["data"]["note"] == "午休"
    await sequencer.position_pending(db, 100_000)
    events = (await client.get("/v1/events?types=line.suspended&limit=200", headers=operator)).json()
    assert any(e["data"].get("line_id") == desk.line_id for e in events["items"])

    # A second hold of the same reason: the problem's detail is shown on the page, nothing else.
    again = await web.post(
        f"/console/lines/{desk.line_id}/holds", data={"csrf": token, "reason": "user_request"}
    )
    shown = await web.get(again.headers["location"])
    assert "already has an open user_request hold" in shown.text
    assert "Traceback" not in shown.text

    hold_id = line_page.text.split(f"/console/lines/{desk.line_id}/holds/")[1].split("/lift")[0]
    lifted = await web.post(f"/console/lines/{desk.line_id}/holds/{hold_id}/lift", data={"csrf": token})
    assert lifted.status_code == 303
    line = (await client.get(f"/v1/lines/{desk.line_id}", headers=operator)).json()
    assert line["status"] == "active"


async def test_a_revoked_key_ends_its_session(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk, db: Database
) -> None:
    secret = await factories.create_key(db, role="operator")
    await sign_in(web, secret)
    assert (await web.get("/console/mvnos")).status_code == 200
    keys = (await client.get("/v1/api-keys?limit=200", headers=Desk.bearer(desk.operator))).json()["items"]
    key_id = next(k["id"] for k in keys if secret.startswith(k["hint"]))
    revoked = await client.post(f"/v1/api-keys/{key_id}/revoke", headers=Desk.bearer(desk.operator))
    assert revoked.status_code == 200
    ended = await web.get("/console/mvnos")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/console/login"


async def test_pages_render_in_both_languages(web: httpx.AsyncClient, desk: Desk) -> None:
    await sign_in(web, desk.operator)
    for lang, word in (("en", "Sign out"), ("zh", "退出")):
        switched = await web.get(f"/console/lang/{lang}?next=/console/mvnos")
        assert switched.headers["location"] == "/console/mvnos"
        for path in (
            f"/console/numbers?msisdn={desk.msisdn}",
            f"/console/lines/{desk.line_id}",
            "/console/lookup",
            "/console/mvnos",
            f"/console/mvnos/{desk.mvno_id}",
            f"/console/audit?subject_kind=line&subject_id={desk.line_id}&verify=true",
        ):
            response = await web.get(path)
            assert response.status_code == 200, (path, response.text)
            assert word in response.text
            assert "default-src 'self'" in response.headers["content-security-policy"]
            # Nothing from another host: every asset and form target is the app's own.
            assert 'src="http' not in response.text
            assert 'href="http' not in response.text.replace('href="http://testserver', "")
    verified = await web.get("/console/audit?verify=true")
    assert 'id="chain-state"' in verified.text
    assert "审计链完整" in verified.text
    # Never a redirect to another site.
    away = await web.get("/console/lang/en?next=https://evil.example/")
    assert away.headers["location"] == "/console/numbers"
    number_page = await web.get(f"/console/numbers?msisdn={desk.msisdn}")
    # The language switch comes back to the same search.
    assert f"next=/console/numbers%3Fmsisdn%3D{desk.msisdn}" in number_page.text
    unknown = await web.get("/console/lines/lin_nope")
    assert unknown.status_code == 404
    assert "Line lin_nope not found." in unknown.text
    missing = await web.get("/console/numbers?msisdn=12")
    assert missing.status_code == 422
    assert "11 digits" in missing.text


async def test_operator_restricts_and_reinstates_an_mvno(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk
) -> None:
    await sign_in(web, desk.operator)
    page, token = await page_token(web, f"/console/mvnos/{desk.mvno_id}")
    # The block's utilisation bar: one number of its 10,000 in use.
    assert '<meter min="0" max="10000" value="1"' in page.text
    counts = dict(re.findall(r'<dd data-status="(\w+)">(\d+)</dd>', page.text))
    assert counts == {"active": "1", "suspended": "0", "cancelled": "0"}
    operator = Desk.bearer(desk.operator)
    empty = await web.post(f"/console/mvnos/{desk.mvno_id}/restrict", data={"csrf": token, "reason": " "})
    assert "reason" in (await web.get(empty.headers["location"])).text
    assert (await client.get(f"/v1/mvnos/{desk.mvno_id}", headers=operator)).json()["status"] == "active"

    await web.post(
        f"/console/mvnos/{desk.mvno_id}/restrict", data={"csrf": token, "reason": "整改通知 2026-11"}
    )
    mvno = (await client.get(f"/v1/mvnos/{desk.mvno_id}", headers=operator)).json()
    assert (mvno["status"], mvno["status_reason"]) == ("restricted", "整改通知 2026-11")
    assert "限制中" in (await web.get(f"/console/mvnos/{desk.mvno_id}")).text
    await web.post(f"/console/mvnos/{desk.mvno_id}/reinstate", data={"csrf": token})
    assert (await client.get(f"/v1/mvnos/{desk.mvno_id}", headers=operator)).json()["status"] == "active"
    actions = [
        entry["action"]
        for entry in (
            await client.get(f"/v1/audit?subject_kind=mvno&subject_id={desk.mvno_id}", headers=operator)
        ).json()["items"]
    ]
    assert actions[-2:] == ["mvno.restricted", "mvno.reinstated"]


async def test_text_from_requests_is_escaped(web: httpx.AsyncClient, desk: Desk) -> None:
    await sign_in(web, desk.operator)
    _, token = await page_token(web, f"/console/lines/{desk.line_id}")
    note = '<script>alert("x")</script>'
    placed = await web.post(
        f"/console/lines/{desk.line_id}/holds", data={"csrf": token, "reason": "loss_report", "note": note}
    )
    page = await web.get(placed.headers["location"])
    assert note not in page.text
    assert "&lt;script&gt;" in page.text
    css = await web.get("/console/static/console.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


async def test_every_console_post_refuses_a_missing_token(
    web: httpx.AsyncClient, client: httpx.AsyncClient, desk: Desk
) -> None:
    """Every POST route the console has, not only the ones other tests walk: no token, no action."""
    await sign_in(web, desk.operator)
    values = {
        "line_id": desk.line_id,
        "mvno_id": desk.mvno_id,
        "hold_id": "hld_any",
        "takeover_id": "tko_any",
    }
    posts = [
        route.path.format(**values)
        for route in console_router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/console") and "POST" in route.methods
    ]
    assert len(posts) >= 8
    for path in posts:
        refused = await web.post(path, data={"reason": "user_request", "id_type": "resident_id"})
        assert refused.status_code == 403, path
        assert STRINGS["zh"]["csrf_refused"] in refused.text, path
    line = (await client.get(f"/v1/lines/{desk.line_id}", headers=Desk.bearer(desk.operator))).json()
    assert (line["status"], line["open_holds"]) == ("active", [])


def test_every_form_that_posts_carries_the_token() -> None:
    templates = Path(__file__).resolve().parents[2] / "src" / "mvno_core" / "console" / "templates"
    forms = [
        (template.name, form)
        for template in templates.glob("*.html")
        for form in re.findall(r"<form\b.*?</form>", template.read_text(), flags=re.S)
        if 'method="post"' in form
    ]
    assert len(forms) >= 9
    for name, form in forms:
        assert re.search(r'<input type="hidden" name="csrf" value="\{\{ (session\.)?csrf \}\}">', form), name
