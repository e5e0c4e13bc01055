"""Every subscriber query. Hot paths are plain SQL, one statement each.

Look-ups by ID go through ``id_blind_index`` (an HMAC, see ``pii.py``), never through decrypting rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

SUBSCRIBER_COLUMNS = (
    "id, mvno_id, kind, id_type, name_masked, id_number_masked, real_name_status, verified_at, "
    "live_lines, created_at, purged_at, merged_into"
)

# A duplicate (same MVNO, same ID) inserts nothing and returns nothing; a concurrent duplicate waits for
# the first insert's transaction and then does nothing, so both paths end in the same look-up.
_INSERT = text(
    f"""
    INSERT INTO subscribers (
        id, mvno_id, kind, id_type, name_ciphertext, id_number_ciphertext, id_blind_index,
        name_masked, id_number_masked, real_name_status, live_lines, created_at, updated_at,
        created_by_key_id
    ) VALUES (
        :id, :mvno_id, :kind, :id_type, :name_ciphertext, :id_number_ciphertext, :id_blind_index,
        :name_masked, :id_number_masked, 'unverified', 0, :now, :now, :key_id
    )
    ON CONFLICT (mvno_id, id_type, id_blind_index) DO NOTHING
    RETURNING {SUBSCRIBER_COLUMNS}
    """
)


async def insert(session: AsyncSession, params: dict[str, Any]) -> RowMapping | None:
    row = (await session.execute(_INSERT, params)).first()
    return row._mapping if row else None


async def find_id(session: AsyncSession, *, mvno_id: str, id_type: str, blind_index: bytes) -> str | None:
    found = await session.scalar(
        text(
            "SELECT id FROM subscribers "
            "WHERE mvno_id = :mvno_id AND id_type = :id_type AND id_blind_index = :bi"
        ),
        {"mvno_id": mvno_id, "id_type": id_type, "bi": blind_index},
    )
    return str(found) if found is not None else None


async def get(session: AsyncSession, subscriber_id: str, *, lock: bool = False) -> RowMapping | None:
    row = (
        await session.execute(
            text(
                f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = :id"
                + (" FOR NO KEY UPDATE" if lock else "")
            ),
            {"id": subscriber_id},
        )
    ).first()
    return row._mapping if row else None


async def search(
    session: AsyncSession, *, blind_index: bytes, id_type: str, mvno_id: str | None
) -> list[RowMapping]:
    """Subscribers with this ID: in one MVNO (partners; the unique index), or in all (the blind index)."""
    scope = " AND mvno_id = :mvno_id" if mvno_id is not None else ""
    rows = await session.execute(
        text(
            f"SELECT {SUBSCRIBER_COLUMNS} FROM subscribers "
            # A record a takeover merged into another is no longer a subscriber of its own.
            f"WHERE id_blind_index = :bi AND id_type = :id_type AND merged_into IS NULL{scope} "
            "ORDER BY mvno_id"
        ),
        {"bi": blind_index, "id_type": id_type, "mvno_id": mvno_id},
    )
    return [r._mapping for r in rows]


# 一证通查: one statement over the blind index, joined to the MVNOs and, through ix_lines_subscriber_id,
# to the live lines of each subscriber record. ``count`` is each record's own live-lines counter (the
# one the card cap updates); ``lines`` lists them, oldest first.
IDENTITY_LOOKUP_SQL = """
WITH holders AS (
    SELECT s.id, s.mvno_id, s.live_lines
    FROM subscribers s
    WHERE s.id_blind_index = :bi AND s.id_type = :id_type AND s.merged_into IS NULL{scope}
), live AS (
    SELECT l.id, l.msisdn, l.status, l.activated_at, h.mvno_id
    FROM holders h JOIN lines l ON l.subscriber_id = h.id AND l.status <> 'cancelled'
)
SELECT h.mvno_id, m.name AS mvno_name, sum(h.live_lines)::integer AS count,
       coalesce((SELECT json_agg(json_build_object('line_id', v.id, 'msisdn', v.msisdn,
                                                   'status', v.status, 'activated_at', v.activated_at)
                                 ORDER BY v.activated_at, v.id)
                 FROM live v WHERE v.mvno_id = h.mvno_id), '[]') AS lines
FROM holders h
JOIN mvnos m ON m.id = h.mvno_id
GROUP BY h.mvno_id, m.name
ORDER BY m.name, h.mvno_id
"""


def identity_lookup_statement(*, scoped: bool) -> str:
    return IDENTITY_LOOKUP_SQL.format(scope=" AND s.mvno_id = :mvno_id" if scoped else "")


async def identity_lookup(
    session: AsyncSession, *, blind_index: bytes, id_type: str, mvno_id: str | None
) -> list[RowMapping]:
    rows = await session.execute(
        text(identity_lookup_statement(scoped=mvno_id is not None)),
        {"bi": blind_index, "id_type": id_type, "mvno_id": mvno_id},
    )
    return [r._mapping for r in rows]


VERIFICATION_COLUMNS = (
    "id, subscriber_id, method, result, score, channel, evidence_ref, recorded_at, status_after"
)


async def record_verification(
    session: AsyncSession, params: dict[str, Any], *, new_status: str, status_changed: bool
) -> RowMapping:
    """Insert the verification and, when it changes the status, the subscriber's new status: one
    statement. The caller holds the subscriber row locked."""
    flip = (
        """, flipped AS (
            UPDATE subscribers SET real_name_status = :new_status, verified_at = :now, updated_at = :now
            WHERE id = :subscriber_id
        )"""
        if status_changed
        else ""
    )
    row = (
        await session.execute(
            text(
                f"""
                WITH inserted AS (
                    INSERT INTO subscriber_verifications (
                        id, subscriber_id, mvno_id, method, result, score, channel, evidence_ref,
                        recorded_at, recorded_by_key_id, status_after
                    ) VALUES (
                        :id, :subscriber_id, :mvno_id, :method, :result, :score, :channel,
                        :evidence_ref, :now, :key_id, :new_status
                    )
                    RETURNING {VERIFICATION_COLUMNS}
                ){flip}
                SELECT * FROM inserted
                """
            ),
            {**params, "new_status": new_status},
        )
    ).one()
    return row._mapping


async def list_verifications(
    session: AsyncSession, subscriber_id: str, *, after_id: str | None, limit: int
) -> list[RowMapping]:
    after = " AND id > :after_id" if after_id is not None else ""
    rows = await session.execute(
        text(
            f"SELECT {VERIFICATION_COLUMNS} FROM subscriber_verifications "
            f"WHERE subscriber_id = :sid{after} ORDER BY id LIMIT :limit"
        ),
        {"sid": subscriber_id, "after_id": after_id, "limit": limit},
    )
    return [r._mapping for r in rows]


# Everything sealed with the PII key ring, so a key rotation can re-seal all of it and the old key can
# then be retired: names and ID numbers (subscribers, the end users enterprises register on their
# lines) and signing secrets (webhook endpoints, recycling platforms). A fixed set, so the names can go
# into the SQL.
SealedTable = Literal["subscribers", "line_end_users", "webhook_endpoints", "recycling_platforms"]


@dataclass(frozen=True, slots=True)
class Sealed:
    # Associated data of each value: ``<prefix>:<row id>:<field>`` (what the writer bound it to).
    prefix: str
    columns: tuple[tuple[str, str], ...]  # (column, field); a column may be NULL (purged, no previous)
    counted_as: str  # the name of this table's count in the ``pii.rekeyed`` audit entry


_IDENTITY = (("name_ciphertext", "name"), ("id_number_ciphertext", "id_number"))
SEALED: dict[SealedTable, Sealed] = {
    "subscribers": Sealed("subscriber", _IDENTITY, "subscribers"),
    "line_end_users": Sealed("end_user", _IDENTITY, "end_users"),
    # A rotated endpoint signs with its previous secret for a while: that one is sealed too.
    "webhook_endpoints": Sealed(
        "webhook_endpoint",
        (("secret_sealed", "secret"), ("previous_secret_sealed", "secret")),
        "webhook_endpoints",
    ),
    "recycling_platforms": Sealed(
        "recycling_platform", (("secret_sealed", "secret"),), "recycling_platforms"
    ),
}
SEALED_TABLES: tuple[SealedTable, ...] = tuple(SEALED)


def _key_id_of(column: str) -> str:
    """The key id sealed into a ciphertext (format: version byte, key-id length, key id, nonce, sealed)."""
    return f"convert_from(substring({column} from 3 for get_byte({column}, 1)), 'UTF8')"


def _other_keys(table: SealedTable) -> str:
    # A NULL column compares as NULL: a row whose values are all NULL (purged) is never picked.
    return "(" + " OR ".join(f"{_key_id_of(column)} <> :active" for column, _ in SEALED[table].columns) + ")"


async def sealed_with_other_keys(
    session: AsyncSession,
    active_key_id: str,
    batch: int,
    *,
    table: SealedTable = "subscribers",
    after_id: str | None = None,
) -> list[RowMapping]:
    """The next ``batch`` rows of ``table`` sealed with another key, in id order after ``after_id`` (a
    range scan of the primary key from there, so a pass reads each row once), locked (``SKIP LOCKED``)."""
    after = "id > :after_id AND " if after_id is not None else ""
    columns = ", ".join(column for column, _ in SEALED[table].columns)
    rows = await session.execute(
        text(
            f"SELECT id, {columns} FROM {table} "
            f"WHERE {after}{_other_keys(table)} ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED"
        ),
        {"active": active_key_id, "batch": batch, "after_id": after_id},
    )
    return [row._mapping for row in rows]


async def count_sealed_with_other_keys(
    session: AsyncSession, active_key_id: str, *, table: SealedTable = "subscribers"
) -> int:
    count = await session.scalar(
        text(f"SELECT count(*) FROM {table} WHERE {_other_keys(table)}"), {"active": active_key_id}
    )
    return int(count or 0)


async def reseal(
    session: AsyncSession,
    updates: list[tuple[str, tuple[bytes | None, ...]]],
    *,
    table: SealedTable = "subscribers",
) -> None:
    """Write each row's re-sealed values, in ``SEALED[table].columns`` order, in one statement."""
    columns = [column for column, _ in SEALED[table].columns]
    arrays = ", ".join(f"CAST(:v{i} AS bytea[])" for i in range(len(columns)))
    names = ", ".join(f"v{i}" for i in range(len(columns)))
    assignments = ", ".join(f"{column} = u.v{i}" for i, column in enumerate(columns))
    params: dict[str, Any] = {"ids": [row_id for row_id, _ in updates]}
    for i in range(len(columns)):
        params[f"v{i}"] = [values[i] for _, values in updates]
    await session.execute(
        text(
            f"UPDATE {table} s SET {assignments} "
            f"FROM unnest(CAST(:ids AS text[]), {arrays}) AS u(id, {names}) WHERE s.id = u.id"
        ),
        params,
    )


async def purge_due(
    session: AsyncSession, *, served_before: datetime, now: datetime, batch: int
) -> list[RowMapping]:
    """Erase the identity of up to ``batch`` subscribers whose service ended before ``served_before``:
    no live line, and their last line ended (or, with none, they were registered) before it. The masked
    copies stay; so do their lines and history. They become ``unverified`` (no identity, no new line).

    In the same statement, the end users registered on their lines (enterprise cards) lose their name
    and ID ciphertexts too, masks kept: their service period is the line's, which ended with the
    subscriber's. Each row returned says how many end users were erased (``end_users_purged``)."""
    rows = await session.execute(
        text(
            "WITH due AS (SELECT s.id FROM subscribers s "
            "WHERE s.live_lines = 0 AND s.purged_at IS NULL AND s.updated_at <= :before "
            "AND NOT EXISTS (SELECT 1 FROM lines l WHERE l.subscriber_id = s.id "
            "AND (l.status <> 'cancelled' OR l.ended_at > :before)) "
            "ORDER BY s.updated_at LIMIT :batch FOR UPDATE SKIP LOCKED), "
            "purged AS (UPDATE subscribers s SET name_ciphertext = NULL, id_number_ciphertext = NULL, "
            "id_blind_index = NULL, purged_at = :now, real_name_status = 'unverified', verified_at = NULL, "
            "updated_at = :now FROM due WHERE s.id = due.id RETURNING s.id, s.mvno_id, s.id_type), "
            "end_users AS (UPDATE line_end_users e SET name_ciphertext = NULL, id_number_ciphertext = NULL "
            "FROM lines l JOIN due ON due.id = l.subscriber_id WHERE e.line_id = l.id "
            "AND (e.name_ciphertext IS NOT NULL OR e.id_number_ciphertext IS NOT NULL) "
            "RETURNING l.subscriber_id) "
            "SELECT p.id, p.mvno_id, p.id_type, "
            "(SELECT count(*) FROM end_users e WHERE e.subscriber_id = p.id) AS end_users_purged "
            "FROM purged p"
        ),
        {"before": served_before, "now": now, "batch": batch},
    )
    return [row._mapping for row in rows]
