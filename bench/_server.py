"""Launch the real HTTP server for the benchmark: ``python -m bench._server --port N``.

The database URL comes from ``BENCH_DATABASE_URL`` (not argv, so a password never shows in ``ps``).
The in-server sweeper is off, so no background work competes with the measured requests.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from mvno_core.kernel.config import Settings
from mvno_core.main import create_app

DATABASE_URL_ENV = "BENCH_DATABASE_URL"


KEYS_DIR_ENV = "BENCH_KEYS_DIR"


def build() -> FastAPI:
    """The app, as each worker process builds it (uvicorn's factory)."""
    # The feed sequencer does run (it is part of every write's path to the feed); the audit signing key
    # lives in a throw-away folder shared by the workers.
    keys = Path(os.environ[KEYS_DIR_ENV])
    settings = Settings(
        database_url=os.environ[DATABASE_URL_ENV],
        run_sweeper_in_server=False,
        # One key drives the whole load: the per-key rate limit would cap the figures, not the service.
        rate_limit_per_second=1e9,
        rate_limit_burst=10**9,
        audit_signing_key_file=keys / "audit-signing.key",
    )
    return create_app(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    os.environ.setdefault(KEYS_DIR_ENV, tempfile.mkdtemp(prefix="mvno-bench-keys-"))
    uvicorn.run(
        "bench._server:build",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
