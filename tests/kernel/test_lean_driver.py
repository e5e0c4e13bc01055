"""The lean lane speaks libpq directly for its hot statement (``LeanPool.fetch_one_direct``): its text
parameters must reach the server as psycopg's would, and its statement is prepared once per connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mvno_core.kernel.config import Settings
from mvno_core.kernel.lean import LeanPool

# Every type the encoder knows, cast on the server side so the answer is the server's reading of it.
_ECHO = (
    "SELECT CAST(%(s)s AS text) AS s, CAST(%(b)s AS boolean) AS b, CAST(%(i)s AS bigint) AS i, "
    "CAST(%(t)s AS timestamptz) AS t, CAST(%(d)s AS date) AS d, CAST(%(x)s AS bytea) AS x, "
    "CAST(%(a)s AS text[]) AS a, CAST(%(n)s AS text) AS n, '100%%' AS percent"
)

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@pytest.fixture
async def lean(settings: Settings) -> AsyncIterator[LeanPool]:
    pool = LeanPool(settings.database_url, settings)
    await pool.ensure_open()
    try:
        yield pool
    finally:
        await pool.close()


async def _both(
    pool: LeanPool, params: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    async with pool.connection() as connection:
        direct = await pool.fetch_one_direct(connection, _ECHO, params)
        through_psycopg = await pool.fetch_one(
            connection, f"SELECT CAST(t.* AS text) AS row FROM ({_ECHO}) AS t", params
        )
        direct_row = await pool.fetch_one_direct(
            connection, f"SELECT CAST(t.* AS text) AS row FROM ({_ECHO}) AS t", params
        )
    assert direct_row == through_psycopg  # the server read the same values from both drivers
    return direct, through_psycopg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    s=_text,
    b=st.booleans(),
    i=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    t=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)),
    d=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    x=st.binary(max_size=40),
    a=st.lists(_text, max_size=5),
)
async def test_text_parameters_reach_the_server_as_psycopgs_do(
    lean: LeanPool, s: str, b: bool, i: int, t: datetime, d: date, x: bytes, a: list[str]
) -> None:
    direct, _ = await _both(lean, {"s": s, "b": b, "i": i, "t": t, "d": d, "x": x, "a": a, "n": None})
    assert direct is not None
    assert direct["s"] == s
    assert direct["b"] == ("t" if b else "f")
    assert direct["i"] == str(i)
    assert direct["n"] is None
    assert direct["percent"] == "100%"


async def test_other_offsets_and_a_naive_time_are_read_alike(lean: LeanPool) -> None:
    """An aware time in another zone is the same instant; a naive one is left to psycopg (which
    sends it as ``timestamp``), so both drivers still agree."""
    eastern = timezone(timedelta(hours=8))
    for moment in (datetime(2026, 11, 30, 9, 30, tzinfo=eastern), datetime(2026, 11, 30, 9, 30)):
        await _both(
            lean,
            {"s": "x", "b": True, "i": 1, "t": moment, "d": date(2026, 11, 30), "x": b"", "a": [], "n": None},
        )


async def test_the_statement_is_prepared_once_per_connection(lean: LeanPool) -> None:
    params = {
        "s": "x",
        "b": False,
        "i": 7,
        "t": datetime.now(UTC),
        "d": date.today(),
        "x": b"\x00\xff",
        "a": ['a"b', "c\\d", "{e,f}"],
        "n": None,
    }
    async with lean.connection() as connection:
        for _ in range(5):
            row = await lean.fetch_one_direct(connection, _ECHO, params)
            assert row is not None
            assert row["a"] == '{"a\\"b","c\\\\d","{e,f}"}'
            assert row["x"] == "\\x00ff"
        prepared = await lean.fetch_one(
            connection, "SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE 'lean_%%'", None
        )
    assert prepared == {"n": 1}


async def test_a_failed_statement_leaves_the_connection_usable(lean: LeanPool) -> None:
    import psycopg

    async with lean.connection() as connection:
        with pytest.raises(psycopg.DatabaseError, match="division by zero"):
            await lean.fetch_one_direct(connection, "SELECT 1 / CAST(%(z)s AS int) AS q", {"z": 0})
        with pytest.raises(psycopg.errors.RaiseException, match="refused"):
            await lean.fetch_one_direct(
                connection, "SELECT lean_lane_decline(%(why)s) AS q", {"why": "refused"}
            )
        again = await lean.fetch_one_direct(connection, "SELECT 1 / CAST(%(z)s AS int) AS q", {"z": 1})
    assert again == {"q": "1"}


async def test_a_statement_whose_result_a_migration_changed_is_prepared_again(
    lean: LeanPool, raw: Any
) -> None:
    """A rolling deploy can change a table under a running server: the server then refuses the old
    prepared statement on that connection, so the connection is closed and the next one prepares it
    again (the request in between is declined to the full stack)."""
    import psycopg

    raw.execute("DROP TABLE IF EXISTS lean_plan_probe")
    raw.execute("CREATE TABLE lean_plan_probe (a int)")
    raw.execute("INSERT INTO lean_plan_probe VALUES (1)")
    raw.execute("GRANT SELECT ON lean_plan_probe TO PUBLIC")
    raw.commit()
    probe = "SELECT * FROM lean_plan_probe WHERE a = %(a)s"
    try:
        async with lean.connection() as connection:
            assert await lean.fetch_one_direct(connection, probe, {"a": 1}) == {"a": "1"}
            raw.execute("ALTER TABLE lean_plan_probe ADD COLUMN b text DEFAULT 'x'")
            raw.commit()
            with pytest.raises(psycopg.DatabaseError, match="cached plan"):
                await lean.fetch_one_direct(connection, probe, {"a": 1})
            assert connection.closed
        async with lean.connection() as fresh:
            assert await lean.fetch_one_direct(fresh, probe, {"a": 1}) == {"a": "1", "b": "x"}
    finally:
        raw.execute("DROP TABLE lean_plan_probe")
        raw.commit()
