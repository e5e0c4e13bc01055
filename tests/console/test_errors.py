"""Console failures are pages: whatever goes wrong under /console (a value the database refuses, an
unknown page, a wrong method, a bad query parameter, a broken signing key), the browser gets an HTML
problem page with the kernel's status, detail and request id — never a traceback, never the API's JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mvno_core.kernel.config import Settings
from mvno_core.main import create_app
from tests.conftest import ShiftableClock
from tests.console.conftest import Desk, sign_in


def assert_problem_page(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert detail in response.text
    assert response.headers["x-request-id"] in response.text
    for leak in ("Traceback", 'File "', "problem+json", '"code":'):
        assert leak not in response.text


async def test_a_value_the_database_refuses_is_a_page(web: httpx.AsyncClient, desk: Desk) -> None:
    await sign_in(web, desk.operator)
    # A NUL character reaches PostgreSQL, which refuses it: the kernel's 422, as a page with the nav.
    refused = await web.get("/console/lines/lin_%00x")
    assert_problem_page(refused, 422, "A value in the request cannot be stored or compared.")
    assert 'id="sign-out"' in refused.text


async def test_unknown_pages_methods_and_parameters_are_pages(web: httpx.AsyncClient, desk: Desk) -> None:
    await sign_in(web, desk.operator)
    assert_problem_page(await web.get("/console/no-such-page"), 404, "Not Found")
    wrong_method = await web.get("/console/logout")
    assert_problem_page(wrong_method, 405, "Method Not Allowed")
    assert wrong_method.headers["allow"] == "POST, OPTIONS"
    assert_problem_page(await web.get("/console/audit?verify=maybe"), 422, "see errors")
    # The API keeps its JSON problems.
    api = await web.get("/v1/no-such-thing")
    assert (api.status_code, api.headers["content-type"]) == (404, "application/problem+json")


@pytest.fixture
async def broken_key_app(settings: Settings, clock: ShiftableClock, tmp_path: Path) -> AsyncIterator[object]:
    """The app with a console session key file that is not a key (a bad restore, a truncated copy)."""
    bad = tmp_path / "console-session.key"
    bad.write_text("this is not base64!\n")
    application = create_app(
        settings.model_copy(update={"console_session_key_file": bad}), clock=clock, run_sweeper=False
    )
    yield application
    await application.state.lean_pool.close()
    await application.state.db.dispose()


async def test_an_unexpected_failure_is_a_page_with_the_request_id(broken_key_app: object) -> None:
    transport = httpx.ASGITransport(app=broken_key_app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        failed = await browser.get("/console/login", headers={"X-Request-ID": "console-500-check"})
    assert_problem_page(failed, 500, "An unexpected error occurred; quote the request_id.")
    assert "console-500-check" in failed.text
    assert "base64" not in failed.text.lower()
