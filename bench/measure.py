"""The timed loops: block allocation over HTTP and in raw SQL, reservations, searches.

They time and record (the allocation loop also prints each round as it goes); the phases in
bench/phases.py set the scene around them and print and return their figures.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import database as db
from bench.scenario import HTTP_PROVINCE, HTTP_SEGMENT, PAGE_LIMIT, RAW_HOST, RAW_PROVINCE, RAW_SEGMENT
from bench.stats import Latency


@contextmanager
def collector_paused() -> Iterator[None]:
    """Collect garbage once, then keep Python's cyclic collector off while timing. A full collection of
    this process's heap takes ~90 ms on the 2-core machine, and as the run is deterministic it landed on
    the same request every run (round 7 of the searches), as a client-side outlier."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} → {response.status_code}: {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


# --- allocation ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class AllocationRun:
    http_seconds: list[float] = field(default_factory=list)
    raw_seconds: list[float] = field(default_factory=list)
    http_prefixes: list[str] = field(default_factory=list)
    raw_prefixes: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> int:
        return len(self.http_prefixes) + len(self.raw_prefixes)


def allocate_http(client: httpx.Client, mvno_id: str, run: AllocationRun) -> float:
    started = time.perf_counter()
    response = client.post(
        f"/v1/mvnos/{mvno_id}/blocks", json={"segment": HTTP_SEGMENT, "province": HTTP_PROVINCE}
    )
    elapsed = time.perf_counter() - started
    block = expect(response, 201)
    run.http_prefixes.append(block["prefix"])
    return elapsed


def allocate_raw(conn: db.Connection, mvno_id: str, run: AllocationRun) -> float:
    first = int(RAW_SEGMENT) * 10 ** (7 - len(RAW_SEGMENT))
    prefix = str(first + len(run.raw_prefixes))
    elapsed = db.allocate_raw(
        conn,
        db.RawBlock(
            prefix=prefix, segment=RAW_SEGMENT, host=RAW_HOST, province=RAW_PROVINCE, mvno_id=mvno_id
        ),
    )
    run.raw_prefixes.append(prefix)
    return elapsed


def measure_allocation(client: httpx.Client, conn: db.Connection, mvno_id: str, rounds: int) -> AllocationRun:
    """One untimed warm-up each, then ``rounds`` of each, alternating which goes first every round so
    that checkpoints, autovacuum and a growing table hit both methods alike."""
    run = AllocationRun()
    allocate_http(client, mvno_id, run)
    allocate_raw(conn, mvno_id, run)
    for i in range(rounds):
        if i % 2 == 0:
            run.http_seconds.append(allocate_http(client, mvno_id, run))
            run.raw_seconds.append(allocate_raw(conn, mvno_id, run))
        else:
            run.raw_seconds.append(allocate_raw(conn, mvno_id, run))
            run.http_seconds.append(allocate_http(client, mvno_id, run))
        print(
            f"  round {i + 1:>3}/{rounds}: HTTP {run.http_seconds[-1] * 1000:7.1f} ms   "
            f"raw {run.raw_seconds[-1] * 1000:7.1f} ms",
            flush=True,
        )
    return run


# --- reservations -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReservationRun:
    requested: int
    concurrency: int
    created: int
    distinct_msisdns: int
    failures: dict[str, int]
    seconds: float
    latency: Latency

    @property
    def per_second(self) -> float:
        return self.created / self.seconds


async def reserve_concurrently(
    base_url: str,
    headers: dict[str, str],
    mvno_id: str,
    total: int,
    concurrency: int,
    *,
    name_mvno: bool = True,
) -> ReservationRun:
    """``total`` reservations of "any number" by ``concurrency`` workers over keep-alive connections.
    ``name_mvno=False`` leaves ``mvno_id`` out of the body, as a partner does (its key implies it)."""
    latencies: list[float] = []
    msisdns: list[str] = []
    failures: dict[str, int] = {}
    remaining = iter(range(total))
    body: dict[str, Any] = {"criteria": {}, "ttl_seconds": 3600}
    if name_mvno:
        body["mvno_id"] = mvno_id
    async with httpx.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=60.0,
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    ) as client:
        # Open every client connection and let the server's DB pool grow to size before timing.
        await asyncio.gather(*(client.get(f"/v1/mvnos/{mvno_id}") for _ in range(concurrency)))

        async def worker() -> None:
            for _ in remaining:
                started = time.perf_counter()
                response = await client.post("/v1/reservations", json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code == 201:
                    msisdns.append(response.json()["msisdn"])
                else:
                    code = str(response.json().get("code", response.status_code))
                    failures[code] = failures.get(code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return ReservationRun(
        requested=total,
        concurrency=concurrency,
        created=len(msisdns),
        distinct_msisdns=len(set(msisdns)),
        failures=failures,
        seconds=seconds,
        latency=Latency.of(latencies),
    )


def reserve_pattern(client: httpx.Client, mvno_id: str | None, pattern: str, count: int) -> Latency:
    """``count`` sequential reservations of any number matching ``pattern``; ``mvno_id=None`` leaves it
    out of the body (a partner's key implies it)."""
    body: dict[str, Any] = {"criteria": {"pattern": pattern}}
    if mvno_id is not None:
        body["mvno_id"] = mvno_id
    seconds: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post("/v1/reservations", json=body)
        seconds.append(time.perf_counter() - started)
        expect(response, 201)
    return Latency.of(seconds)


# --- search -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SearchCase:
    key: str  # OPERATOR or PARTNER: which client sends it
    label: str
    params: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    first_page_items: int = 0
    has_next_page: bool = False

    @property
    def title(self) -> str:
        return f"{self.key}: {self.label}"


def measure_search(clients: dict[str, httpx.Client], cases: list[SearchCase], rounds: int) -> None:
    """Round-robin over the cases (one untimed warm-up round first), ``limit=50`` as a client would."""
    for round_no in range(rounds + 1):
        for case in cases:
            client = clients[case.key]
            started = time.perf_counter()
            response = client.get("/v1/numbers", params={**case.params, "limit": str(PAGE_LIMIT)})
            elapsed = time.perf_counter() - started
            page = expect(response, 200)
            if round_no == 0:
                case.first_page_items = len(page["items"])
                case.has_next_page = page["next_cursor"] is not None
            else:
                case.seconds.append(elapsed)
