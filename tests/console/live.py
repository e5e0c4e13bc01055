"""The app under a real uvicorn server in a thread (its own event loop and pool) on a free loopback
port, configured as ``mvno-core serve`` configures it (``cli.server_config``), and API keys inserted
synchronously (for tests that cannot use the async fixtures beside Playwright's loop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import uvicorn

from mvno_core.auth.keys import generate_secret, hash_secret, hint_of
from mvno_core.cli import server_config
from mvno_core.kernel.config import Settings
from mvno_core.kernel.ids import new_id
from mvno_core.main import create_app
from tests.conftest import ShiftableClock
from tests.live_server import HOST, free_port


@contextmanager
def live_app(settings: Settings, clock: ShiftableClock) -> Iterator[str]:
    """Serve the app for these settings; yields its base URL, stops the server on exit."""
    settings = settings.model_copy(update={"run_feed_sequencer_in_server": False})
    app = create_app(settings, clock=clock, run_sweeper=False)
    port = free_port()
    server = uvicorn.Server(
        server_config(app, settings, host=HOST, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="console-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.05)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def insert_key(conninfo: str, role: str) -> str:
    """A new key of this role (no MVNO), straight into the table; returns its secret."""
    secret = generate_secret()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO api_keys (id, secret_hash, hint, role, mvno_id, name, created_at) "
            "VALUES (%s, %s, %s, %s, NULL, 'console live test', now())",
            (new_id("key"), hash_secret(secret), hint_of(secret), role),
        )
    return secret
