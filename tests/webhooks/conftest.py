"""A webhook receiver on 127.0.0.1 (uvicorn in this event loop) that records what it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    # While set to an unset Event, requests wait on it before answering (a receiver that hangs).
    hold: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(headers, body))
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def start(self) -> None:
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("receiver did not start")

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            if self.hold is not None:
                self.hold.set()
            self.server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.server = self.task = None

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    box = Receiver(free_port())
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture
async def other_receiver() -> AsyncIterator[Receiver]:
    box = Receiver(free_port())
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


@pytest.fixture(autouse=True)
def no_endpoints_left(conninfo: str) -> Iterator[None]:
    """Each test's endpoints go with it: a delivery pass serves every endpoint in the database."""
    yield
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DELETE FROM webhook_endpoints")
