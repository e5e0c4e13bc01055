"""The CLI as a user runs it (a subprocess): one line for every operational error, never a traceback;
an unmigrated database migrated (embedded) or explained (given by URL); a busy port named; the demo
keys as shell lines; an aligned keys table."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from mvno_core.cli import app, table
from mvno_core.kernel.config import get_settings
from mvno_core.kernel.embedded import ensure_database


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MVNO_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mvno_core.cli", *args],
        env=environment,
        cwd=cwd,  # no .env file, no .data folder of the repository
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def fresh_database(owner_url: str) -> str:
    """An empty database on the test server, never migrated (created by the owner, used as the owner:
    a single-role deployment, which the CLI must also handle)."""
    admin = make_url(owner_url).set(database="postgres").render_as_string(hide_password=False)
    return ensure_database(admin, f"mvno_cli_{uuid.uuid4().hex[:8]}")


def test_keys_create_on_an_unmigrated_database_url_says_to_migrate(
    fresh_database: str, tmp_path: Path
) -> None:
    result = _cli("keys", "create", "--role", "operator", cwd=tmp_path, MVNO_DATABASE_URL=fresh_database)
    line = _one_line_error(result)
    assert "run `mvno-core migrate`" in line
    assert "(none)" in line


def test_keys_list_on_a_fresh_embedded_data_folder_migrates_and_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = _cli("keys", "create", "--role", "regulator", cwd=tmp_path, MVNO_DATA_DIR=str(data_dir))
    assert created.returncode == 0, created.stderr
    assert "Traceback" not in created.stderr
    key_id = created.stdout.split()[0]
    assert key_id.startswith("key_")
    listed = _cli("keys", "list", cwd=tmp_path, MVNO_DATA_DIR=str(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout


def _in_process(monkeypatch: pytest.MonkeyPatch, *args: str, **env: str) -> str:
    """Run the CLI in this process (fast; for paths that fail before doing anything) and return its
    one error line."""
    for name in [k for k in os.environ if k.startswith("MVNO_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught error
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


DOWN = "postgresql://mvno:secret@127.0.0.1:1/mvno"


@pytest.mark.parametrize(
    ("command", "url", "expected"),
    [
        (("keys", "list"), DOWN, "cannot reach the database"),
        (("keys", "revoke", "key_x"), "definitely not a url", "MVNO_DATABASE_URL is not a database URL"),
        (("migrate",), DOWN, "cannot reach the database"),
        (("sweep",), "definitely not a url", "MVNO_DATABASE_URL is not a database URL"),
        (("demo",), DOWN, "cannot reach the database"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else "",
)
def test_operational_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...], url: str, expected: str
) -> None:
    line = _in_process(monkeypatch, *command, MVNO_DATABASE_URL=url)
    assert expected in line
    assert "secret" not in line  # the URL's password is never echoed


def test_a_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    line = _in_process(monkeypatch, "keys", "list", MVNO_PORT="eighty")
    assert line.startswith("error: invalid setting MVNO_PORT")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_on_a_busy_port_names_it_and_mvno_port(
    monkeypatch: pytest.MonkeyPatch, busy_port: int, database_url: str
) -> None:
    line = _in_process(
        monkeypatch, "serve", "--no-demo", MVNO_DATABASE_URL=database_url, MVNO_PORT=str(busy_port)
    )
    assert f"port {busy_port} on 127.0.0.1 is already in use" in line
    assert "MVNO_PORT" in line


def test_demo_prints_keys_as_export_lines(fresh_database: str, tmp_path: Path) -> None:
    assert _cli("migrate", cwd=tmp_path, MVNO_DATABASE_URL=fresh_database).returncode == 0
    result = _cli("demo", cwd=tmp_path, MVNO_DATABASE_URL=fresh_database)
    assert result.returncode == 0, result.stderr
    exports = [line for line in result.stdout.splitlines() if line.startswith("export ")]
    shape = re.compile(
        r"export (OPERATOR|REGULATOR|PARTNER|PARTNER2)_KEY=mvk_[A-Za-z0-9_-]+(  # [a-z0-9-]+)?"
    )
    assert len(exports) == 4
    assert all(shape.fullmatch(line) for line in exports), exports
    # One paste into a shell sets every variable the README's examples use.
    shell = subprocess.run(
        ["bash", "-c", result.stdout + '\necho "$OPERATOR_KEY $REGULATOR_KEY $PARTNER_KEY $PARTNER2_KEY"'],
        capture_output=True,
        text=True,
        check=True,
    )
    values = shell.stdout.split()
    assert len(values) == 4
    assert all(value.startswith("mvk_") for value in values)
    again = _cli("demo", cwd=tmp_path, MVNO_DATABASE_URL=fresh_database)
    assert again.returncode == 0
    assert "export " not in again.stdout  # shown once


def test_table_aligns_columns_under_the_header() -> None:
    lines = table(
        ("ID", "ROLE", "NAME"), [("key_1", "operator", "a"), ("key_123456", "partner", "long name")]
    )
    assert lines == [
        "ID          ROLE      NAME",
        "key_1       operator  a",
        "key_123456  partner   long name",
    ]


def test_keys_list_is_an_aligned_table(database_url: str, tmp_path: Path) -> None:
    for name in ("x", "a much longer key label"):
        created = _cli(
            "keys",
            "create",
            "--role",
            "regulator",
            "--name",
            name,
            cwd=tmp_path,
            MVNO_DATABASE_URL=database_url,
        )
        assert created.returncode == 0, created.stderr
    listed = _cli("keys", "list", cwd=tmp_path, MVNO_DATABASE_URL=database_url)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    columns = [header.index(name) for name in ("ID", "ROLE", "MVNO", "HINT", "STATE", "NAME")]
    assert columns == sorted(columns)
    assert len(rows) >= 2
    for row in rows:
        for start in columns[1:]:
            # Each cell starts where its header does, after at least two spaces.
            assert row[start - 2 : start] == "  ", row
            assert row[start] != " ", row


def test_pii_rotate_key_reports_progress_and_ends_at_zero(database_url: str, tmp_path: Path) -> None:
    """Every row is already under the active key here: one pass, nothing left."""
    result = _cli("pii", "rotate-key", "--batch", "50", cwd=tmp_path, MVNO_DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith("; 0 left")
