"""End users of enterprise cards (Anti-Telecom-Fraud Law art. 12): who actually uses an IoT or
industry card an enterprise subscriber holds.

Where the line's profile says so (``line_profiles.end_user_required``), an enterprise activates only
with the end user in the body, registered in the activation's own statement. Later registrations
(``POST /v1/lines/{id}/end-users``: the device was sold on, the employee changed) replace the current
one, which keeps its ``replaced_at``. Names and ID numbers are sealed with the subscribers' PII key
ring (the row's id is bound into the ciphertext) and appear in responses, audit entries and events
only masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, text

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import ValidationFailed
from mvno_core.kernel.statements import Piece, run
from mvno_core.lines import holds
from mvno_core.lines.lifecycle import LineStatus, ensure_live
from mvno_core.lines.schemas import EndUserCreate, EndUserRead
from mvno_core.subscribers import idcheck, pii
from mvno_core.subscribers.lifecycle import SubscriberKind, id_type_fits

REGISTERED_EVENT = "line.end_user_registered"

_COLUMNS = "id, line_id, id_type, name_masked, id_number_masked, registered_at, replaced_at"


def checked(ctx: RequestContext, end_user: EndUserCreate, *, loc: tuple[str, ...]) -> EndUserCreate:
    """A person's document, checked per its type and normalised (422 ``validation_error`` otherwise)."""
    if not id_type_fits(SubscriberKind.INDIVIDUAL, end_user.id_type):
        raise ValidationFailed("An end user is a person: a personal document.", loc=(*loc, "id_type"))
    try:
        today = ctx.now.astimezone(CHINA_TIME).date()
        number = idcheck.check(end_user.id_type, end_user.id_number, today=today)
    except idcheck.IdNumberInvalid as exc:
        raise ValidationFailed(str(exc), loc=(*loc, "id_number")) from exc
    return end_user.model_copy(update={"id_number": number})


def masked(end_user: EndUserCreate) -> dict[str, Any]:
    """What audit entries and events may carry."""
    return {
        "name_masked": pii.mask_name(end_user.name),
        "id_type": end_user.id_type.value,
        "id_number_masked": pii.mask_id_number(end_user.id_number),
    }


@dataclass(frozen=True, slots=True)
class Sealed:
    id: str
    params: dict[str, Any]


def seal(ctx: RequestContext, end_user: EndUserCreate) -> Sealed:
    ring = pii.keyring(ctx.settings)
    end_user_id = new_id("enu")
    return Sealed(
        end_user_id,
        {
            "enu_id": end_user_id,
            "enu_id_type": end_user.id_type.value,
            "enu_name_ct": ring.encrypt(end_user.name, context=f"end_user:{end_user_id}:name"),
            "enu_id_number_ct": ring.encrypt(end_user.id_number, context=f"end_user:{end_user_id}:id_number"),
            "enu_name_masked": pii.mask_name(end_user.name),
            "enu_id_number_masked": pii.mask_id_number(end_user.id_number),
        },
    )


def insert_piece(*, name: str, line: str, sealed: Sealed, now: datetime, key_id: str) -> Piece:
    """The registration for the line in CTE ``line`` (``id, msisdn, mvno_id``)."""
    return Piece(
        name,
        "INSERT INTO line_end_users (id, line_id, msisdn, mvno_id, id_type, name_ciphertext, "
        "id_number_ciphertext, name_masked, id_number_masked, registered_at, registered_by_key_id) "
        "SELECT :enu_id, l.id, l.msisdn, l.mvno_id, :enu_id_type, :enu_name_ct, :enu_id_number_ct, "
        f":enu_name_masked, :enu_id_number_masked, :now, :key_id FROM {line} l RETURNING id",
        {**sealed.params, "now": now, "key_id": key_id},
    )


def _read(row: RowMapping) -> EndUserRead:
    return EndUserRead(**{key: row[key] for key in EndUserRead.model_fields})


async def register(ctx: RequestContext, line_id: str, data: EndUserCreate) -> EndUserRead:
    """A new end user for a live line of an enterprise subscriber; the current one is replaced."""
    line = await holds.line_for_update(ctx, line_id)
    ensure_live(LineStatus(line["status"]))
    end_user = checked(ctx, data, loc=("body",))
    kind = (
        await ctx.session.execute(
            text("SELECT kind FROM subscribers WHERE id = :id"), {"id": line["subscriber_id"]}
        )
    ).scalar_one()
    if kind != SubscriberKind.ENTERPRISE:
        raise ValidationFailed(
            "End users are registered for enterprise subscribers' lines; an individual is the user.",
            loc=("path", "line_id"),
        )
    replaced = (
        await ctx.session.execute(
            text(
                "UPDATE line_end_users SET replaced_at = :now WHERE line_id = :line_id "
                "AND replaced_at IS NULL RETURNING id"
            ),
            {"now": ctx.now, "line_id": line_id},
        )
    ).scalar_one_or_none()
    sealed = seal(ctx, end_user)
    target = Piece(
        "target",
        "SELECT CAST(:target_id AS text) AS id, CAST(:target_msisdn AS text) AS msisdn, "
        "CAST(:target_mvno AS text) AS mvno_id",
        {"target_id": line_id, "target_msisdn": line["msisdn"], "target_mvno": line["mvno_id"]},
    )
    piece = insert_piece(name="enu", line="target", sealed=sealed, now=ctx.now, key_id=ctx.principal.key_id)
    await run(ctx.session, [target, piece], "SELECT 1")
    await record(
        ctx,
        action=REGISTERED_EVENT,
        subject=Subject("line", line_id),
        mvno_id=line["mvno_id"],
        data={"end_user_id": sealed.id, "replaced_id": replaced, **masked(end_user)},
        event_type=REGISTERED_EVENT,
    )
    rows = await list_rows(ctx, line_id)
    return next(_read(row) for row in rows if row["id"] == sealed.id)


async def list_rows(ctx: RequestContext, line_id: str) -> list[RowMapping]:
    rows = await ctx.session.execute(
        text(f"SELECT {_COLUMNS} FROM line_end_users WHERE line_id = :id ORDER BY registered_at, id"),
        {"id": line_id},
    )
    return [row._mapping for row in rows]


async def list_visible(ctx: RequestContext, line_id: str) -> list[EndUserRead]:
    """Every registration of the line, oldest first (the current one has no ``replaced_at``)."""
    await holds.visible_line(ctx, line_id)
    return [_read(row) for row in await list_rows(ctx, line_id)]
