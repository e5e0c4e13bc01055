"""The server's own delivery worker (started in its lifespan) delivers without anyone calling it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from bench.server import _stop, start_server

from tests.webhooks.conftest import Receiver


async def test_a_running_server_delivers_on_its_own(
    partner: dict[str, str],
    mvno: dict[str, Any],
    receiver: Receiver,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MVNO_WEBHOOK_ALLOW_LOOPBACK_URLS", "true")
    monkeypatch.setenv("MVNO_WEBHOOK_POLL_SECONDS", "0.2")
    process, base_url = start_server(database_url)
    try:
        async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as http:
            created = await http.post("/v1/webhook-endpoints", json={"url": receiver.url}, headers=partner)
            assert created.status_code == 201, created.text
            for _ in range(150):
                if created_event(receiver, created.json()["id"]):
                    break
                await asyncio.sleep(0.1)
    finally:
        _stop(process)
    assert created_event(receiver, created.json()["id"])


def created_event(receiver: Receiver, endpoint_id: str) -> bool:
    """Whether the endpoint's own ``webhook_endpoint.created`` has arrived (an event committed just
    before the endpoint may arrive first)."""
    bodies = [json.loads(r.body) for r in receiver.requests]
    return any(
        b["type"] == "webhook_endpoint.created" and b["data"]["subject"]["id"] == endpoint_id for b in bodies
    )
