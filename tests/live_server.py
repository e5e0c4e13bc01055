"""The real server as a separate process on a free loopback port, for tests that need one (a state
machine driving it synchronously, a crash)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, database_url: str, **env: str) -> LiveServer:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "mvno_core.main:create_app",
                "--host",
                HOST,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env={
                **os.environ,
                "MVNO_DATABASE_URL": database_url,
                "MVNO_RUN_SWEEPER_IN_SERVER": "false",
                **env,
            },
        )
        server = cls(url=f"http://{HOST}:{port}", process=process)
        server.wait_healthy()
        return server

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited during start-up ({self.process.returncode})")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not become healthy")

    def stop(self) -> None:
        """SIGTERM to this PID only; SIGKILL if it does not go."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
