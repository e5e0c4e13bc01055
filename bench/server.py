"""The service under test, run as a separate process (``bench._server``) on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench._server import DATABASE_URL_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(process: subprocess.Popen[bytes], base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited during start-up (exit code {process.returncode})")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /healthz within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # SIGTERM to this PID only: uvicorn shuts down gracefully
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextmanager
def running_server(
    database_url: str, *, startup_timeout: float = 60.0, checkout: Path | None = None, workers: int = 1
) -> Iterator[str]:
    """Start the server, wait for ``GET /healthz``, yield its base URL; stop it (by PID) on the way out.

    ``checkout``: serve another checkout of this repository (a baseline commit, for before/after figures
    in one run): its own launcher and package come first on the path."""
    process, base_url = start_server(
        database_url, startup_timeout=startup_timeout, checkout=checkout, workers=workers
    )
    try:
        yield base_url
    finally:
        _stop(process)


def start_server(
    database_url: str,
    *,
    startup_timeout: float = 60.0,
    checkout: Path | None = None,
    port: int | None = None,
    workers: int = 1,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server and wait until it is healthy: (process, base URL). The caller stops it (the
    crash test kills it with SIGKILL and starts another on the same port)."""
    port = port or free_port()
    base_url = f"http://{HOST}:{port}"
    root = checkout or REPO_ROOT
    env = {**os.environ, DATABASE_URL_ENV: database_url}
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(checkout / "src"), str(checkout)])
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._server", "--port", str(port)]
        + (["--workers", str(workers)] if workers > 1 else []),
        cwd=root,
        env=env,
    )
    try:
        _wait_healthy(process, base_url, startup_timeout)
    except BaseException:
        _stop(process)
        raise
    return process, base_url
