"""A takeover's progress in the console: the exiting and the receiving MVNO's pages show it, and the pages
that follow it reload themselves while it runs (a meta refresh: no script), batch after batch, until it
completes. The worker is driven by hand here (the request's own kick does nothing)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from mvno_core.kernel.config import Settings
from mvno_core.kernel.db import Database
from mvno_core.takeovers import service as takeover_service
from mvno_core.takeovers import worker
from tests import factories
from tests.conftest import ShiftableClock
from tests.console.conftest import Desk, sign_in

REFRESH = '<meta http-equiv="refresh" content="3">'


@pytest.fixture
def no_kick(monkeypatch: pytest.MonkeyPatch) -> None:
    async def idle(*_: Any) -> None:
        return None

    monkeypatch.setattr(worker, "kick", idle)
    # One block per batch, so the progress moves visibly between batches.
    monkeypatch.setattr(takeover_service, "BLOCK_BATCH", 1)


def progress(html: str, takeover_id: str) -> tuple[str, str, str]:
    """(status, done ratio, blocks moved) as the page shows them."""
    section = html[html.index(f'id="takeover-{takeover_id}"') :]
    status = re.search(r'class="takeover-status"><span class="status status-(\w+)"', section)
    ratio = re.search(r'class="done-ratio">([0-9.]+%)<', section)
    blocks = re.search(r'class="moved-blocks">([^<]+)<', section)
    assert status is not None
    assert ratio is not None
    assert blocks is not None
    return status.group(1), ratio.group(1), blocks.group(1)


async def test_takeover_progress_is_followed_live(
    web: httpx.AsyncClient,
    client: httpx.AsyncClient,
    desk: Desk,
    db: Database,
    clock: ShiftableClock,
    settings: Settings,
    no_kick: None,
) -> None:
    operator = Desk.bearer(desk.operator)
    await factories.allocate(client, operator, desk.mvno_id, segment="165", province="31")
    receiver = await factories.create_mvno(client, operator)
    started = await client.post(
        "/v1/takeovers",
        json={"from_mvno_id": desk.mvno_id, "to_mvno_id": receiver["id"], "reason": "许可证到期"},
        headers=operator,
    )
    assert started.status_code == 202, started.text
    takeover_id = started.json()["id"]

    await sign_in(web, desk.operator)
    exiting_page = (await web.get(f"/console/mvnos/{desk.mvno_id}")).text
    assert progress(exiting_page, takeover_id) == ("running", "0.0%", "0 / 2")
    assert "退出中" in exiting_page
    # The exiting MVNO's page has no form: it follows the takeover itself.
    assert REFRESH in exiting_page
    # The receiver's has the restrict form (a reload would wipe what is typed): it links to the live page.
    receiver_page = (await web.get(f"/console/mvnos/{receiver['id']}")).text
    assert REFRESH not in receiver_page
    assert f'href="/console/takeovers/{takeover_id}"' in receiver_page
    live = (await web.get(f"/console/takeovers/{takeover_id}")).text
    assert REFRESH in live
    assert progress(live, takeover_id) == ("running", "0.0%", "0 / 2")

    assert await worker.run_pending(db, clock, settings, takeover_id=takeover_id, max_batches=1) == 1
    live = (await web.get(f"/console/takeovers/{takeover_id}")).text
    status, ratio, blocks = progress(live, takeover_id)
    assert (status, blocks) == ("running", "1 / 2")
    assert ratio != "0.0%"

    await worker.run_pending(db, clock, settings, takeover_id=takeover_id)
    done = (await web.get(f"/console/takeovers/{takeover_id}")).text
    assert progress(done, takeover_id) == ("completed", "100.0%", "2 / 2")
    assert REFRESH not in done
    exiting_page = (await web.get(f"/console/mvnos/{desk.mvno_id}")).text
    assert REFRESH not in exiting_page
    assert "已终止" in exiting_page

    # The regulator follows it too; an unknown takeover is a 404 page.
    await sign_in(web, desk.regulator)
    assert progress((await web.get(f"/console/takeovers/{takeover_id}")).text, takeover_id)[0] == "completed"
    missing = await web.get("/console/takeovers/tko_nope")
    assert missing.status_code == 404
    assert "Takeover tko_nope not found." in missing.text
