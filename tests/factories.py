"""Typed factory functions (no factory_boy): they go through the real API or the real key table."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from stdnum.cn import ric, uscc

from mvno_core.auth.keys import generate_secret, hash_secret, hint_of
from mvno_core.kernel.db import Database
from mvno_core.kernel.ids import new_id

ALL_HOSTS = ["CMCC", "CUCC", "CTCC"]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def create_key(db: Database, *, role: str, mvno_id: str | None = None) -> str:
    secret = generate_secret()
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO api_keys (id, secret_hash, hint, role, mvno_id, name, created_at) "
                "VALUES (:id, :h, :hint, :role, :mvno, 'test', now())"
            ),
            {
                "id": new_id("key"),
                "h": hash_secret(secret),
                "hint": hint_of(secret),
                "role": role,
                "mvno": mvno_id,
            },
        )
    return secret


def unique_code(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def mvno_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": unique_code(),
        "name": "测试移动",
        "legal_name": "测试移动通信有限公司",
        "license_no": "A2.B1-TEST",
        "hosts": ALL_HOSTS,
        "licensed_provinces": ["11", "31", "44"],
    }
    body.update(overrides)
    return body


async def create_mvno(client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/mvnos", json=mvno_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def allocate(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    mvno_id: str,
    *,
    segment: str = "171",
    province: str = "11",
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/mvnos/{mvno_id}/blocks",
        json={"segment": segment, "province": province, **extra},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Every error is RFC 9457 problem+json with the contract's stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(f"/problems/{code}")
    for member in ("title", "detail", "instance", "request_id"):
        assert body.get(member), member
    return body


async def wait_for_lock_waiters(conninfo: str, count: int, *, timeout: float = 20.0) -> None:
    """Block until ``count`` sessions of this database wait on a lock: the concurrency barrier.

    Tests hold a lock from a raw connection, fire N requests, wait here until all N are queued on
    that lock, then release it, so the requests provably run at the same time.
    """
    import asyncio
    import time

    import psycopg

    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            row = await cursor.fetchone()
            waiting = int(row[0]) if row else 0
            if waiting >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"only {waiting} of {count} requests reached the lock")
            await asyncio.sleep(0.02)


async def walk_pages(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    *,
    max_pages: int = 1000,
) -> tuple[list[dict[str, Any]], str | None]:
    """Follow ``next_cursor`` from the first page (at most ``max_pages``): every item seen, in order,
    and the cursor left over (None when the list was exhausted). Each page must be a 200 within
    ``limit``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(max_pages):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=headers)
        assert response.status_code == 200, (query, response.text)
        page = response.json()
        assert len(page["items"]) <= int(params.get("limit", "50")), query
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return items, cursor


# --- subscribers --------------------------------------------------------------------------------------

# Real county codes, some created long after people born in the 1970s got IDs carrying them (IDs name
# the issuing county): 110115 Daxing district (2001), 500101 Wanzhou district (1997), 460105 Xiuying
# district (2002), 440305 Nanshan district (1990). python-stdnum's ``cn.ric.validate`` refuses these.
NEWER_COUNTY_CODES = ("110115", "500101", "460105", "440305")


def resident_id(
    rng: random.Random | None = None,
    *,
    born: date | None = None,
    address: str | None = None,
    sequence: int | None = None,
) -> str:
    """A valid 18-character resident ID (GB 11643): a random address code, birth date and sequence,
    and the MOD 11-2 check character from python-stdnum."""
    rng = rng or random.Random()
    address = address or f"{rng.randint(11, 65):02d}{rng.randint(0, 9999):04d}"
    born = born or date(1930, 1, 1) + timedelta(days=rng.randint(0, 365 * 90))
    sequence = rng.randint(0, 999) if sequence is None else sequence
    body = f"{address}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def uscc_code(rng: random.Random | None = None) -> str:
    """A valid unified social credit code (GB 32100), check character from python-stdnum."""
    rng = rng or random.Random()
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "91" + f"{rng.randint(110000, 659999)}" + "".join(rng.choice(alphabet) for _ in range(9))
    return body + uscc.calc_check_digit(body)


def subscriber_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "individual",
        "name": "张三",
        "id_type": "resident_id",
        "id_number": resident_id(),
    }
    body.update(overrides)
    return body


async def create_subscriber(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    verified: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """A subscriber with a fresh valid resident ID (give ``mvno_id`` for the operator); ``verified``
    records a passed in-person face match, as activation will require."""
    response = await client.post("/v1/subscribers", json=subscriber_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    if verified:
        check = await client.post(
            f"/v1/subscribers/{data['id']}/verifications",
            json={"method": "in_person_face_match", "result": "passed", "score": 97.5, "channel": "store"},
            headers=headers,
        )
        assert check.status_code == 201, check.text
        data["real_name_status"] = check.json()["real_name_status"]
    return data
