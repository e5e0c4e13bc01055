"""Writes the audit entry and the event of a mutation, in the caller's transaction.

Every service mutation ends with ``record(...)`` (one round trip), or joins ``pieces(...)`` to the
statement that makes the change (no round trip of its own; written only if the change happened).
Set-based jobs that change many rows at once use ``record_many``. None commits: the change, its audit row
and its event commit or roll back together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import text

from mvno_core.audit.hashing import content_hash
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.statements import Piece


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    id: str


_AUDIT_COLUMNS = (
    "id, recorded_at, actor_key_id, actor_role, actor_mvno_id, action, subject_kind, subject_id, "
    "mvno_id, request_id, data, content_hash"
)
_AUDIT_VALUES = (
    ":a_id, :at, :actor_key_id, :actor_role, :actor_mvno_id, :action, :subject_kind, :subject_id, "
    ":mvno_id, :request_id, CAST(:a_data AS jsonb), :content_hash"
)

_INSERT_AUDIT_AND_EVENT = text(
    f"""
    WITH audit AS (INSERT INTO audit_entries ({_AUDIT_COLUMNS}) VALUES ({_AUDIT_VALUES}))
    INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data)
    VALUES (:e_id, :event_type, :at, :mvno_id, :subject_kind, :subject_id, CAST(:e_data AS jsonb))
    """
)
_INSERT_AUDIT = text(f"INSERT INTO audit_entries ({_AUDIT_COLUMNS}) VALUES ({_AUDIT_VALUES})")


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def audit_params(
    ctx: RequestContext,
    *,
    action: str,
    subject: Subject,
    mvno_id: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    entry_id = new_id("aud")
    principal = ctx.principal
    return {
        "a_id": entry_id,
        "at": ctx.now,
        "actor_key_id": principal.key_id,
        "actor_role": principal.role.value,
        "actor_mvno_id": principal.mvno_id,
        "action": action,
        "subject_kind": subject.kind,
        "subject_id": subject.id,
        "mvno_id": mvno_id,
        "request_id": ctx.request_id,
        "a_data": _dumps(data),
        "content_hash": content_hash(
            entry_id=entry_id,
            recorded_at=ctx.now,
            actor_key_id=principal.key_id,
            actor_role=principal.role.value,
            actor_mvno_id=principal.mvno_id,
            action=action,
            subject_kind=subject.kind,
            subject_id=subject.id,
            mvno_id=mvno_id,
            request_id=ctx.request_id,
            data=data,
        ),
    }


async def record(
    ctx: RequestContext,
    *,
    action: str,
    subject: Subject,
    mvno_id: str | None,
    data: dict[str, Any],
    event_type: str | None = None,
    event_data: dict[str, Any] | None = None,
) -> None:
    """Append the audit entry for ``action`` and, if ``event_type`` is given, its event."""
    params = audit_params(ctx, action=action, subject=subject, mvno_id=mvno_id, data=data)
    if event_type is None:
        await ctx.session.execute(_INSERT_AUDIT, params)
        return
    params |= {
        "e_id": new_id("evt"),
        "event_type": event_type,
        "e_data": _dumps(event_data if event_data is not None else data),
    }
    await ctx.session.execute(_INSERT_AUDIT_AND_EVENT, params)


# The parameter names of _AUDIT_VALUES (as audit_params() returns them), in column order.
_AUDIT_PARAMS = [
    "a_id",
    "at",
    "actor_key_id",
    "actor_role",
    "actor_mvno_id",
    "action",
    "subject_kind",
    "subject_id",
    "mvno_id",
    "request_id",
    "a_data",
    "content_hash",
]


def pieces(
    ctx: RequestContext,
    *,
    name: str,
    action: str,
    subject: Subject,
    mvno_id: str | None,
    data: dict[str, Any],
    only_if: str,
    event_type: str | None = None,
    event_data: dict[str, Any] | None = None,
) -> list[Piece]:
    """The audit entry (and event) of one change as statement pieces, inserted only if ``only_if`` (SQL
    over earlier CTEs, e.g. ``EXISTS (SELECT 1 FROM claimed)``) holds. Parameters carry ``name`` as a
    prefix, so one statement may journal several changes."""
    audit = audit_params(ctx, action=action, subject=subject, mvno_id=mvno_id, data=data)
    audit_sql, event_sql, audit_keys = _piece_sql(name, only_if)
    result = [
        Piece(
            f"{name}_audit",
            audit_sql,
            dict(zip(audit_keys, map(audit.__getitem__, _AUDIT_PARAMS), strict=True)),
        )
    ]
    if event_type is not None:
        result.append(
            Piece(
                f"{name}_event",
                event_sql,
                {
                    f"{name}_e_id": new_id("evt"),
                    f"{name}_event_type": event_type,
                    # The audit entry's data, already encoded, unless the event tells something else.
                    f"{name}_e_data": audit["a_data"] if event_data is None else _dumps(event_data),
                },
            )
        )
    return result


@lru_cache(maxsize=256)
def _piece_sql(name: str, only_if: str) -> tuple[str, str, tuple[str, ...]]:
    """The audit and event pieces' SQL for one name and condition, and the audit parameters' names:
    the same few shapes on every request (an activation journals through here each time)."""
    values = ", ".join(
        f"CAST(:{name}_{param} AS jsonb)" if param == "a_data" else f":{name}_{param}"
        for param in _AUDIT_PARAMS
    )
    audit_sql = f"INSERT INTO audit_entries ({_AUDIT_COLUMNS}) SELECT {values} WHERE {only_if}"
    event_sql = (
        "INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data) "
        f"SELECT :{name}_e_id, :{name}_event_type, :{name}_at, :{name}_mvno_id, "
        f":{name}_subject_kind, :{name}_subject_id, CAST(:{name}_e_data AS jsonb) WHERE {only_if}"
    )
    return audit_sql, event_sql, tuple(f"{name}_{param}" for param in _AUDIT_PARAMS)


# Many entries of one context in ONE statement, their per-entry columns in one JSON array (a single
# parameter: psycopg dumps a list parameter element by element in Python, slower than json.dumps). The
# rows keep the order given (ids are time-ordered). Sent one row per execute (executemany), the 500
# audit rows and 500 events of a purge batch took 57% of the batch.
_ENTRIES = (
    "u AS (SELECT * FROM jsonb_to_recordset(CAST(:entries AS jsonb)) AS u(a_id text, e_id text, "
    "action text, subject_kind text, subject_id text, mvno_id text, data jsonb, content_hash text))"
)
_MANY_AUDIT = (
    f"INSERT INTO audit_entries ({_AUDIT_COLUMNS}) "
    "SELECT u.a_id, :at, :actor_key_id, :actor_role, :actor_mvno_id, u.action, u.subject_kind, "
    "u.subject_id, u.mvno_id, :request_id, u.data, u.content_hash FROM u"
)
_RECORD_MANY = text(f"WITH {_ENTRIES} {_MANY_AUDIT}")
_RECORD_MANY_WITH_EVENTS = text(
    f"WITH {_ENTRIES}, audit AS ({_MANY_AUDIT}) "
    "INSERT INTO events (id, type, occurred_at, mvno_id, subject_kind, subject_id, data) "
    "SELECT u.e_id, :event_type, :at, u.mvno_id, u.subject_kind, u.subject_id, u.data FROM u"
)


async def record_many(
    ctx: RequestContext,
    entries: list[tuple[str, Subject, str | None, dict[str, Any]]],
    *,
    event_type: str | None,
) -> None:
    """Audit (and emit) many changes of one kind at once: ``(action, subject, mvno_id, data)`` each,
    in one statement."""
    if not entries:
        return
    rows = []
    for action, subject, mvno_id, data in entries:
        audit = audit_params(ctx, action=action, subject=subject, mvno_id=mvno_id, data=data)
        rows.append(
            {
                "a_id": audit["a_id"],
                "e_id": new_id("evt") if event_type is not None else None,
                "action": action,
                "subject_kind": subject.kind,
                "subject_id": subject.id,
                "mvno_id": mvno_id,
                "data": data,
                "content_hash": audit["content_hash"],
            }
        )
    principal = ctx.principal
    params: dict[str, Any] = {
        "entries": json.dumps(rows, ensure_ascii=False, separators=(",", ":")),
        "at": ctx.now,
        "actor_key_id": principal.key_id,
        "actor_role": principal.role.value,
        "actor_mvno_id": principal.mvno_id,
        "request_id": ctx.request_id,
    }
    if event_type is None:
        await ctx.session.execute(_RECORD_MANY, params)
        return
    await ctx.session.execute(_RECORD_MANY_WITH_EVENTS, params | {"event_type": event_type})
