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

from mvno_core.kernel.config import Settings
from mvno_core.main import create_app

DATABASE_URL_ENV = "BENCH_DATABASE_URL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The feed sequencer does run (it is part of every write's path to the feed); the audit signing key
    # lives in a throw-away folder.
    keys = Path(tempfile.mkdtemp(prefix="mvno-bench-keys-"))
    settings = Settings(
        database_url=os.environ[DATABASE_URL_ENV],
        run_sweeper_in_server=False,
        # One key drives the whole load: the per-key rate limit would cap the figures, not the service.
        rate_limit_per_second=1e9,
        rate_limit_burst=10**9,
        audit_signing_key_file=keys / "audit-signing.key",
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
