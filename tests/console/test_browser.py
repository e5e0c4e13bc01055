"""The console in a real browser: Debian's chromium driven by Playwright, against a real uvicorn server on
a free loopback port serving the test database (never `playwright install`: no downloaded browser).

Playwright's sync API keeps its own event loop current while it runs, so pytest-asyncio's fixtures
cannot run beside it: here Playwright lives for this module only (its session-wide fixtures are
overridden with module scope) and the desk is built synchronously over the live server's API.

The walk a back-office agent does: sign in → find a number → open its line → place a user_request
hold → see the line suspended with its reason → lift it → 一证通查 shows the line → sign out. Then the
refusals: a regulator has no write controls and its forged POST (valid CSRF token) is refused, a form
without its token is refused, a partner key cannot sign in. And a running takeover's progress on the
exiting MVNO's page moves to "completed" by itself while its batches run. Writes the line page's
screenshot to ``.github/screenshots/line-page.png`` (shown in the README).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, expect, sync_playwright

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.numbers.grading import Grade, grade_of
from mvno_core.takeovers import worker
from tests import factories
from tests.conftest import ShiftableClock
from tests.console.conftest import Desk
from tests.console.live import insert_key, live_app
from tests.lines.conftest import iccid, imsi

CHROMIUM = os.environ.get("MVNO_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".github" / "screenshots"

# CI installs chromium before `make test` and sets MVNO_REQUIRE_BROWSER (.ci/run), so a missing browser fails
# there; elsewhere the browser tests say why they did not run.
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and not os.environ.get("MVNO_REQUIRE_BROWSER"),
    reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)",
)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright) -> BrowserType:
    return playwright.chromium


@pytest.fixture(scope="module")
def browser(browser_type: BrowserType, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    launched = browser_type.launch(**browser_type_launch_args)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1200, "height": 900}, "locale": "zh-CN"}


@pytest.fixture(scope="module")
def live_server(settings: Settings, clock: ShiftableClock) -> Iterator[str]:
    with live_app(settings, clock) as base:
        yield base


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def desk(live_server: str, conninfo: str) -> Desk:
    """The console desk, built through the live server's API (synchronously: see the module note)."""
    operator, regulator = insert_key(conninfo, "operator"), insert_key(conninfo, "regulator")
    with httpx.Client(base_url=live_server, trust_env=False, headers=Desk.bearer(operator)) as api:
        mvno = _created(api.post("/v1/mvnos", json=factories.mvno_body()))
        block = _created(
            api.post(f"/v1/mvnos/{mvno['id']}/blocks", json={"segment": "165", "province": "11"})
        )
        partner = _created(api.post("/v1/api-keys", json={"role": "partner", "mvno_id": mvno["id"]}))["key"]
        id_number = factories.resident_id()
        as_partner = Desk.bearer(partner)
        subscriber = _created(
            api.post(
                "/v1/subscribers", json=factories.subscriber_body(id_number=id_number), headers=as_partner
            )
        )
        _created(
            api.post(
                f"/v1/subscribers/{subscriber['id']}/verifications",
                json={
                    "method": "in_person_face_match",
                    "result": "passed",
                    "score": 97.5,
                    "channel": "store",
                },
                headers=as_partner,
            )
        )
        msisdn = next(
            number
            for number in (f"{block['prefix']}{suffix:04d}" for suffix in range(2000, 10_000))
            if grade_of(number) is Grade.STANDARD
        )
        line = _created(
            api.post(
                "/v1/lines",
                json={
                    "subscriber_id": subscriber["id"],
                    "msisdn": msisdn,
                    "iccid": iccid(),
                    "imsi": imsi("00"),
                },
                headers=as_partner,
            )
        )
    return Desk(
        operator=operator,
        regulator=regulator,
        partner=partner,
        mvno_id=mvno["id"],
        line_id=line["id"],
        msisdn=msisdn,
        id_number=id_number,
    )


def _sign_in(page: Page, base: str, secret: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#api-key", secret)
    page.click("#sign-in")


def _holds(base: str, desk: Desk) -> list[dict[str, Any]]:
    with httpx.Client(base_url=base, trust_env=False) as api:
        items: list[dict[str, Any]] = api.get(
            f"/v1/lines/{desk.line_id}/holds", headers=Desk.bearer(desk.operator)
        ).json()["items"]
        return items


def test_the_agents_walk(page: Page, live_server: str, desk: Desk) -> None:
    base = live_server
    _sign_in(page, base, desk.operator)
    expect(page).to_have_url(f"{base}/console/numbers")

    page.fill("#msisdn", desk.msisdn)
    page.click("#find-number")
    expect(page.locator("h1")).to_contain_text(desk.msisdn)
    page.click("#open-line")
    expect(page).to_have_url(f"{base}/console/lines/{desk.line_id}")
    expect(page.locator("#line-status")).to_contain_text("正常")

    page.select_option("#hold-reason", "user_request")
    page.fill("#hold-note", "用户来电要求停机")
    page.click("#place-hold-button")
    expect(page.locator("#line-status")).to_contain_text("停机")
    expect(page.locator("#open-holds")).to_contain_text("用户申请停机")
    expect(page.locator("#open-holds")).to_contain_text("Suspended at the subscriber's request")
    expect(page.locator("#open-holds")).to_contain_text("用户来电要求停机")
    expect(page.locator("#no-standing-blockers")).to_be_visible()
    expect(page.locator("#cancel-line")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "line-page.png"), full_page=True)

    page.click("button.lift[data-reason=user_request]")
    expect(page.locator("#line-status")).to_contain_text("正常")
    expect(page.locator("#no-open-holds")).to_be_visible()
    assert [hold["lifted_by_role"] for hold in _holds(base, desk)] == ["operator"]

    page.click("a[href='/console/lookup']")
    page.select_option("#id-type", "resident_id")
    page.fill("#id-number", desk.id_number)
    page.click("#lookup-button")
    expect(page.locator("#lookup-lines")).to_contain_text(f"{desk.msisdn[:3]}****{desk.msisdn[-4:]}")
    expect(page.locator("#lookup-total")).to_have_text("1")

    page.click("#sign-out")
    expect(page).to_have_url(f"{base}/console/login")
    page.goto(f"{base}/console/lines/{desk.line_id}")
    expect(page).to_have_url(f"{base}/console/login")


def test_refusals(browser: Browser, live_server: str, desk: Desk) -> None:
    base = live_server
    holds_before = _holds(base, desk)
    regulator = browser.new_context()
    page = regulator.new_page()
    _sign_in(page, base, desk.regulator)
    page.goto(f"{base}/console/lines/{desk.line_id}")
    expect(page.locator("#line-status")).to_be_visible()
    assert page.locator("#place-hold").count() == 0
    assert page.locator("form[action$='/disputes']").count() == 0
    assert page.locator("#cancel-form").count() == 0
    token = page.locator("form[action='/console/logout'] input[name=csrf]").get_attribute("value")
    assert token
    forged = page.request.post(
        f"{base}/console/lines/{desk.line_id}/holds", form={"csrf": token, "reason": "user_request"}
    )
    assert forged.status == 403
    regulator.close()

    operator = browser.new_context()
    page = operator.new_page()
    _sign_in(page, base, desk.operator)
    expect(page).to_have_url(f"{base}/console/numbers")
    tokenless = page.request.post(
        f"{base}/console/lines/{desk.line_id}/holds", form={"reason": "user_request"}
    )
    assert tokenless.status == 403
    operator.close()
    assert _holds(base, desk) == holds_before

    partner = browser.new_context()
    page = partner.new_page()
    _sign_in(page, base, desk.partner)
    expect(page.locator("p.flash.error")).to_contain_text("合作方")
    assert not [c for c in partner.cookies() if c["name"] == "mvno_console"]
    partner.close()


def _run_takeover(settings: Settings, clock: ShiftableClock, takeover_id: str) -> None:
    """The takeover's batches, as the sweeper would run them, from a thread with an event loop of its own
    (Playwright's is current on this one)."""

    async def run() -> None:
        database = Database(settings.database_url or "", pool_size=1, max_overflow=0)
        try:
            await worker.run_pending(database, clock, settings, takeover_id=takeover_id)
        finally:
            await database.dispose()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="takeover-batches")
    thread.start()
    thread.join(timeout=60)


def test_takeover_progress_updates_itself(
    page: Page,
    live_server: str,
    desk: Desk,
    settings: Settings,
    clock: ShiftableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def idle(*_: Any) -> None:
        return None

    # The live server's own kick would finish the takeover before the page is open.
    monkeypatch.setattr(worker, "kick", idle)
    base = live_server
    with httpx.Client(base_url=base, trust_env=False, headers=Desk.bearer(desk.operator)) as api:
        exiting = _created(api.post("/v1/mvnos", json=factories.mvno_body()))
        _created(api.post(f"/v1/mvnos/{exiting['id']}/blocks", json={"segment": "165", "province": "11"}))
        receiver = _created(api.post("/v1/mvnos", json=factories.mvno_body()))
        started = api.post(
            "/v1/takeovers",
            json={"from_mvno_id": exiting["id"], "to_mvno_id": receiver["id"], "reason": "经营终止"},
        )
        assert started.status_code == 202, started.text
        takeover_id = started.json()["id"]

    _sign_in(page, base, desk.operator)
    page.goto(f"{base}/console/mvnos/{exiting['id']}")
    status = page.locator(f"#takeover-{takeover_id} .takeover-status")
    expect(status).to_contain_text("进行中")
    _run_takeover(settings, clock, takeover_id)
    # No click, no navigation by the test: the page reloads itself and shows the end.
    expect(status).to_contain_text("已完成", timeout=15_000)
    expect(page.locator(f"#takeover-{takeover_id} .done-ratio")).to_have_text("100.0%")
    expect(page.locator("#mvno-status")).to_contain_text("已终止")
