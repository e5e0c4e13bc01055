"""Engine, sessions and the metadata naming convention.

Constraint names are stable (naming convention), so an ``IntegrityError`` can be mapped to an error code by
the name of the constraint it broke (see ``problems.py``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import _queries as psycopg_queries
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# psycopg converts each query's placeholders with a regex pass, and caches the result only for queries
# under 4 KiB with at most 50 parameters (its guard against ever-different ORM batch inserts). Our hot
# statements are composed CTEs (kernel.statements) of a fixed shape per use case, a few KiB and 50-odd
# parameters: without this, every activation pays the conversion again. The shapes are few and fixed, so
# the cache stays small.
psycopg_queries.MAX_CACHED_STATEMENT_LENGTH = max(psycopg_queries.MAX_CACHED_STATEMENT_LENGTH, 16_384)
psycopg_queries.MAX_CACHED_STATEMENT_PARAMS = max(psycopg_queries.MAX_CACHED_STATEMENT_PARAMS, 128)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and pin the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# The feed sequencer is woken when a transaction that wrote events commits. Which ones did is seen from
# the statements (not from a trigger, and without asking every writer to say so).
EVENTS_CHANNEL = "mvno_events"
_WRITES_EVENTS = re.compile(r"\bINTO\s+events\b", re.IGNORECASE)
_EVENTS_WRITTEN = "mvno_events_written"
_SESSION_CONNECTION = "mvno_connection"


def _note_event_writes(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if _WRITES_EVENTS.search(statement):
        conn.info[_EVENTS_WRITTEN] = True


class TrackedSession(Session):
    """Remembers its connection, so ``Database.transaction`` can tell whether events were written."""


@event.listens_for(TrackedSession, "after_begin")
def _remember_connection(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    connection.info.pop(_EVENTS_WRITTEN, None)  # a flag left by a rolled-back transaction
    session.info[_SESSION_CONNECTION] = connection


class Database:
    """One async engine and its session factory; the app keeps one on ``app.state.db``."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        max_overflow: int = 30,
        idle_in_transaction_ms: int = 60_000,
        pool_timeout: float = 30.0,
    ) -> None:
        self.url = normalise_url(url)
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            # No ping per checkout: it is a round trip on every request. A connection the server has
            # dropped fails its first statement instead; SQLAlchemy then discards the pool's older
            # connections, and the request answers 503 with Retry-After (kernel.problems).
            pool_pre_ping=False,
            pool_timeout=pool_timeout,
            # SQL parameters never reach logs or error reports (they will carry ID numbers).
            hide_parameters=True,
            # A session idle inside a transaction holds its locks and its snapshot: end it.
            connect_args={"options": f"-c idle_in_transaction_session_timeout={idle_in_transaction_ms}"},
        )
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=TrackedSession
        )
        event.listen(self.engine.sync_engine, "before_cursor_execute", _note_event_writes)
        # Called after a commit that wrote events (the in-process feed sequencer's wake-up). With none
        # registered (CLI commands, a server without its own sequencer), such a transaction sends
        # NOTIFY instead, so the process that does run the sequencer wakes.
        self.on_events_committed: list[Callable[[], None]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any exception."""
        async with self.sessionmaker() as session:
            async with session.begin():
                yield session
                connection: Connection | None = session.info.pop(_SESSION_CONNECTION, None)
                wrote_events = bool(connection is not None and connection.info.pop(_EVENTS_WRITTEN, False))
                if wrote_events and not self.on_events_committed:
                    # NOTIFY serialises the commits of notifying transactions (a cluster-wide lock
                    # at commit), which is why the server wakes its own sequencer in-process instead.
                    await session.execute(text(f"NOTIFY {EVENTS_CHANNEL}"))
            if wrote_events:
                for wake in self.on_events_committed:
                    wake()

    async def dispose(self) -> None:
        await self.engine.dispose()
