"""Recycling tests: the line scene (an MVNO with a 165 block, its partner, a verified subscriber), platform
receivers on 127.0.0.1, and a clean slate of platforms after each test (a registered platform changes how
every sweep treats ended quarantines, so none may outlive its test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from mvno_core.kernel.config import Settings
from tests.cancellations.helpers import body as cancellation_body
from tests.lines.conftest import Scene, other_scene, scene
from tests.webhooks.conftest import Receiver, free_port

__all__ = ["other_scene", "scene"]


async def _receiver() -> Receiver:
    box = Receiver(free_port())
    await box.start()
    return box


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box = await _receiver()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def other_receiver() -> AsyncIterator[Receiver]:
    box = await _receiver()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
def big_batches(settings: Settings) -> Settings:
    """Batches large enough to hold every number other tests left in quarantine, so this test's numbers
    are always in the first batch a sweep forms."""
    return settings.model_copy(update={"recycling_batch_size": 10_000, "webhook_retry_first_seconds": 1.0})


@pytest.fixture(autouse=True)
def no_platforms_left(conninfo: str) -> Iterator[None]:
    yield
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Batches still pending are then released by the next sweep (nothing holds them any more).
        conn.execute(
            "UPDATE recycling_deliveries SET status = 'abandoned', closed_at = now(), leased_until = NULL "
            "WHERE status = 'pending'"
        )
        conn.execute(
            "UPDATE recycling_platforms SET status = 'inactive', deactivated_at = now() "
            "WHERE status = 'active'"
        )


async def register(
    client: httpx.AsyncClient, operator: dict[str, str], url: str, name: str | None = None
) -> dict[str, Any]:
    body = {"name": name or f"platform-{free_port()}", "url": url}
    response = await client.post("/v1/recycling-platforms", json=body, headers=operator)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def quarantined_number(client: httpx.AsyncClient, scene: Scene, n: int) -> str:
    """A number of the scene whose line was just cancelled (quarantined for 90 days)."""
    line = await scene.line(client, n)
    cancelled = await client.post(
        f"/v1/lines/{line['id']}/cancellations", json=cancellation_body(), headers=scene.partner
    )
    assert cancelled.status_code == 201, cancelled.text
    msisdn: str = line["msisdn"]
    return msisdn
