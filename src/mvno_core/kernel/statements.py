"""Statement pieces: named CTEs that a use case joins into one data-modifying statement.

A round trip costs more than the SQL in it (style.md, "Transactions and speed"), so a hot use case sends
its whole change as one ``WITH a AS (…), b AS (…) SELECT …``: the number claim, the row it creates, the
audit entry, the event and the idempotency record. Each domain offers its writes as pieces; a piece may
read the CTEs named before it (``after=``) and runs only for the rows they produced, so one failed gate
leaves every later piece without input and the statement changes nothing.

PostgreSQL runs every data-modifying CTE exactly once, on one snapshot, whether or not the final SELECT
reads it; a piece that must see another's effect therefore joins that CTE's ``RETURNING`` output rather
than the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import RowMapping, TextClause, text
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Piece:
    """One CTE: ``name AS (sql)``, with the bind parameters its SQL names."""

    name: str
    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)


def compose(pieces: list[Piece], final: str) -> tuple[TextClause, dict[str, Any]]:
    """``WITH`` the pieces in order, then ``final``; parameters merged (a clash is a programming error)."""
    params: dict[str, Any] = {}
    names: set[str] = set()
    for piece in pieces:
        if piece.name in names:
            raise ValueError(f"two statement pieces are named {piece.name!r}")
        names.add(piece.name)
        for key, value in piece.params.items():
            if key in params and params[key] != value:
                raise ValueError(f"statement pieces disagree on parameter {key!r}")
            params[key] = value
    ctes = ", ".join(f"{piece.name} AS ({piece.sql})" for piece in pieces)
    return _clause(f"WITH {ctes} {final}"), params


@lru_cache(maxsize=512)
def _clause(sql: str) -> TextClause:
    """One ``TextClause`` per statement shape: building one parses its bind names (a regex pass over a
    few kilobytes), and a use case sends the same shape on every request."""
    return text(sql)


def compose_for_driver(pieces: list[Piece], final: str) -> tuple[str, dict[str, Any]]:
    """``compose`` for a plain psycopg connection (the lean lane): the same SQL, its ``:name`` binds
    rendered as psycopg's ``%(name)s`` by SQLAlchemy's own compiler, so both paths send one text."""
    statement, params = compose(pieces, final)
    return _driver_sql(statement.text), params


def driver_text(sql: str) -> str:
    """One statement with ``:name`` binds, as a plain psycopg connection takes it."""
    return _driver_sql(sql)


@lru_cache(maxsize=512)
def _driver_sql(sql: str) -> str:
    return str(_clause(sql).compile(dialect=_PSYCOPG_DIALECT))


_PSYCOPG_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]


async def run(session: AsyncSession, pieces: list[Piece], final: str) -> RowMapping | None:
    """Send the composed statement (one round trip) and return its first row."""
    statement, params = compose(pieces, final)
    row = (await session.execute(statement, params)).first()
    return row._mapping if row is not None else None


async def run_all(session: AsyncSession, pieces: list[Piece], final: str) -> list[RowMapping]:
    """Send the composed statement (one round trip) and return every row."""
    statement, params = compose(pieces, final)
    return [row._mapping for row in await session.execute(statement, params)]
