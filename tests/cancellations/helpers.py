"""Small helpers shared by the endings tests."""

from __future__ import annotations

from typing import Any

import httpx

from mvno_core.events import sequencer
from mvno_core.kernel.db import Database
from tests.lines.conftest import Scene


def body(province: str = "11", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "requested_province": province,
        "identity_check": {"method": "in_person_face_match", "result": "passed"},
    }
    data.update(overrides)
    return data


async def line(client: httpx.AsyncClient, scene: Scene, n: int, **overrides: Any) -> dict[str, Any]:
    response = await scene.activate(client, scene.number(n), **overrides)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def account(
    client: httpx.AsyncClient, scene: Scene, line_id: str, *, balance: int = 0, arrears: int = 0
) -> None:
    data: dict[str, Any] = {"balance_fen": balance, "arrears_fen": arrears}
    if arrears:
        data["overdue_since"] = "2026-01-01"
    response = await client.put(f"/v1/lines/{line_id}/account", json=data, headers=scene.partner)
    assert response.status_code == 200, response.text


async def events(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str], types: str
) -> list[dict[str, Any]]:
    await sequencer.position_pending(db, 100_000)
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"types": types, "limit": 500}
        if cursor:
            params["after"] = cursor
        page = (await client.get("/v1/events", params=params, headers=headers)).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not page["items"] or cursor is None:
            return items
