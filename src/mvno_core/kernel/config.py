"""Settings, read from the environment with the ``MVNO_`` prefix (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MVNO_", env_file=".env", extra="ignore")

    # No URL means: start the embedded PostgreSQL server kept in ``data_dir`` (it sets up both roles).
    # The service's URL: a role that owns nothing and may not update or delete audit rows, truncate, or
    # disable triggers (``ops/migrate.py`` grants it what it needs after each migration).
    database_url: str | None = None
    # The owner's URL, used only to migrate and grant. Unset: migrations use ``database_url`` (one role
    # for everything, which leaves the audit trail's protection to the trigger alone).
    migration_database_url: str | None = None
    # The restricted role the embedded server creates for the service.
    app_role: str = "mvno_app"
    data_dir: Path = Path(".data")
    database_name: str = "mvno"
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=30, ge=0)
    # Ends sessions left idle inside a transaction (they would stall the event feed and hold locks).
    db_idle_in_transaction_ms: int = Field(default=60_000, ge=1000)
    # How long a request waits for a pooled connection before it is answered 503 + Retry-After.
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # The lean lane (kernel/lean.py) serves a partner's activation without the framework's per-request
    # work, over its own small pool of plain psycopg connections. Off: the full stack serves it.
    lean_lane: bool = True
    lean_pool_size: int = Field(default=10, ge=1)

    host: str = "127.0.0.1"
    port: int = 8000
    # Proxies whose X-Forwarded-Proto / X-Forwarded-For are believed (comma-separated addresses or
    # networks, "*" for any): behind a TLS-terminating proxy the app then sees https, so the console's
    # cookies are Secure. Anyone else's forwarded headers are ignored.
    forwarded_allow_ips: str = "127.0.0.1"
    log_level: str = "INFO"
    # Public base for RFC 9457 ``type`` URIs.
    problem_base_uri: str = "https://mvno-core.example/problems/"

    # Keys for names and ID numbers at rest (subscribers/pii.py): a JSON document or the path of a file
    # holding it. Unset: ``<data_dir>/pii-keys.json``, created on first start. A secret: never logged.
    pii_keys: SecretStr | None = None

    max_body_bytes: int = 64 * 1024
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    # How long an authenticated API key is trusted without a lookup: a revocation takes effect in every
    # process within this many seconds (0 = look the key up on every request).
    auth_cache_seconds: float = Field(default=1.0, ge=0, le=1.0)

    reservation_default_ttl_seconds: int = Field(default=1800, ge=60, le=86_400)
    # How often the in-server sweeper runs (reservation expiry, audit sequencing, key pruning).
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    run_sweeper_in_server: bool = True
    audit_sequencer_batch: int = Field(default=5000, ge=1)
    # Ed25519 key that signs audit checkpoints; kept outside the database (default: data_dir, mode
    # 0600, created on first use). The latest checkpoint is kept next to it.
    audit_signing_key_file: Path | None = None

    # Feed sequencer: run in the server (woken after commits and by NOTIFY), batch size, and the idle
    # fallback interval when nothing wakes it.
    run_feed_sequencer_in_server: bool = True
    feed_sequencer_batch: int = Field(default=5000, ge=1)
    feed_sequencer_idle_seconds: float = Field(default=1.0, gt=0)
    # After each run, let commits gather this long so a busy server positions many events per run.
    feed_sequencer_gather_ms: float = Field(default=10.0, ge=0, le=1000)
    # The most positions one feed poll scans, so a filtered poll is bounded and still moves on.
    feed_scan_window: int = Field(default=10_000, ge=1)

    # Lifecycle periods and limits (domain.md marks several M/L, hence settings, not constants).
    quarantine_days: int = Field(default=90, ge=1)
    # The card caps per ID are rows of ``line_profiles`` (one per profile), not settings.
    reverification_hours: int = Field(default=24, ge=1)
    # Telecom Regulations: suspend 30 days after a bill is overdue; terminate 60 days after suspension.
    arrears_hold_after_days: int = Field(default=30, ge=1)
    arrears_termination_after_days: int = Field(default=60, ge=1)
    # Real-name data is kept for the service period plus two years (MIIT Order 25), then erased.
    pii_retention_days: int = Field(default=730, ge=1)
    # The MVNO resale segments have been excluded from number porting; flip when the rule changes.
    segments_portable: bool = False

    # Operator console (/console): sign-in ends after this many idle minutes; sessions are signed with a
    # key kept in a file outside the database (default: data_dir/console-session.key, 0600).
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_session_key_file: Path | None = None

    def console_key_path(self) -> Path:
        return self.console_session_key_file or self.data_dir / "console-session.key"

    # Webhooks (webhooks/): receivers on private, loopback or link-local addresses are refused unless
    # allowed (a receiver on the same host, tests); the worker runs in the server and in ``sweep``.
    webhook_allow_private_urls: bool = False
    webhook_allow_loopback_urls: bool = False
    run_webhooks_in_server: bool = True
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_concurrency: int = Field(default=16, ge=1)
    # Retries back off exponentially (with jitter) from the first delay up to the cap; an endpoint that
    # has failed without a single success for this long is disabled.
    webhook_retry_first_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_disable_after_hours: float = Field(default=24.0, gt=0)
    # After a rotation the previous secret also signs for this long (receivers accept either).
    webhook_secret_grace_hours: float = Field(default=24.0, ge=0)
    # Delivery attempts older than this are pruned by the sweeper.
    webhook_delivery_log_days: int = Field(default=30, ge=1)

    # Safe reissue (二次号码焕新, recycling/): with a recycling platform registered, numbers whose
    # quarantine ended are pushed in batches (at most this many numbers, one batch per sweep) and become
    # available once every platform acknowledged, or after this many hours whatever the platforms did.
    # Deliveries reuse the webhook timeout, backoff and URL rules.
    recycling_ack_deadline_hours: float = Field(default=72.0, gt=0)
    recycling_batch_size: int = Field(default=1000, ge=1, le=10_000)

    # Rate limit per API key, a token bucket kept in each server process (kernel/ratelimit.py).
    rate_limit_per_second: float = Field(default=200.0, gt=0)
    rate_limit_burst: int = Field(default=400, ge=1)

    def signing_key_path(self) -> Path:
        return self.audit_signing_key_file or self.data_dir / "audit-signing.key"


@lru_cache
def get_settings() -> Settings:
    return Settings()
