"""Engine, sessions and the metadata naming convention.

Constraint names are stable (naming convention), so an ``IntegrityError`` can be mapped to an error code by
the name of the constraint it broke (see ``problems.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and pin the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Database:
    """One async engine and its session factory; the app keeps one on ``app.state.db``."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        max_overflow: int = 30,
        idle_in_transaction_ms: int = 60_000,
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
            # SQL parameters never reach logs or error reports (they will carry ID numbers).
            hide_parameters=True,
            # A session idle inside a transaction holds back the event feed (which serves only
            # transactions older than every open one) and its locks: end it.
            connect_args={"options": f"-c idle_in_transaction_session_timeout={idle_in_transaction_ms}"},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on any exception."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
