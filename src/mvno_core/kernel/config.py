"""Settings, read from the environment with the ``MVNO_`` prefix (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MVNO_", env_file=".env", extra="ignore")

    # No URL means: start the embedded PostgreSQL server kept in ``data_dir``.
    database_url: str | None = None
    data_dir: Path = Path(".data")
    database_name: str = "mvno"
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=30, ge=0)
    # Ends sessions left idle inside a transaction (they would stall the event feed and hold locks).
    db_idle_in_transaction_ms: int = Field(default=60_000, ge=1000)

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # Public base for RFC 9457 ``type`` URIs.
    problem_base_uri: str = "https://mvno-core.example/problems/"

    max_body_bytes: int = 64 * 1024
    idempotency_ttl_hours: int = Field(default=24, ge=24)

    reservation_default_ttl_seconds: int = Field(default=1800, ge=60, le=86_400)
    # How often the in-server sweeper runs (reservation expiry, audit sequencing, key pruning).
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    run_sweeper_in_server: bool = True
    audit_sequencer_batch: int = Field(default=5000, ge=1)

    # Later lifecycle stages (regulatory periods that may change, hence settings, not constants).
    quarantine_days: int = 90
    card_limit_per_mvno: int = 5
    reverification_hours: int = 24


@lru_cache
def get_settings() -> Settings:
    return Settings()
