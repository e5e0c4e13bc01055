from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import LiveServer


@pytest.fixture(scope="module")
def live_server(database_url: str) -> Iterator[LiveServer]:
    server = LiveServer.start(database_url)
    yield server
    server.stop()
