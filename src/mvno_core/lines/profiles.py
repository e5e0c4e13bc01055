"""Line profiles (consumer, iot, industry): their rules are rows of ``line_profiles``, not code.

The activation statement reads the row it activates under (card cap and cap class, voice, SMS, data
cap, IMEI and end-user requirements; ``statements.line_profile``). The response, though, is decided
before the statement runs (it is stored for idempotent replay inside it), and it shows the voice, SMS
and data cap the line gets; so the rules are also kept here, in a per-process copy of the table that
costs no round trip. The statement refuses if the row no longer shows what the copy said, and the
refusal's explanation reloads the copy: a profile edited by SQL is picked up on the next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The profile a line gets when the request names none.
DEFAULT_PROFILE = "consumer"

# In the order of ``ProfileRules``'s fields.
COLUMNS = (
    "profile, general_data, cap_class, card_cap, voice_enabled, sms_enabled, data_cap_mb, imei_required, "
    "end_user_required"
)


@dataclass(frozen=True, slots=True)
class ProfileRules:
    profile: str
    general_data: bool
    cap_class: str
    card_cap: int
    voice_enabled: bool
    sms_enabled: bool
    data_cap_mb: int | None
    imei_required: bool
    end_user_required: bool


_copy: dict[tuple[str, bool], ProfileRules] | None = None


async def load(session: AsyncSession) -> dict[tuple[str, bool], ProfileRules]:
    """Read the whole table (a handful of rows) and keep it as this process's copy."""
    global _copy
    rows = await session.execute(text(f"SELECT {COLUMNS} FROM line_profiles"))
    _copy = {(row.profile, row.general_data): ProfileRules(**row._mapping) for row in rows}
    return _copy


async def rules(session: AsyncSession, profile: str, general_data: bool) -> ProfileRules | None:
    """The rules of (``profile``, ``general_data``) from the copy; the table is read only when the copy
    is missing or lacks the pair (then ``None`` means no such profile)."""
    copy = _copy
    if copy is None or (profile, general_data) not in copy:
        copy = await load(session)
    return copy.get((profile, general_data))


def cached(profile: str, general_data: bool) -> ProfileRules | None:
    """The rules from the copy only (the lean lane has no session; a miss sends it to the full stack,
    which reads the table)."""
    return _copy.get((profile, general_data)) if _copy is not None else None


async def fresh(session: AsyncSession, profile: str, general_data: bool) -> ProfileRules | None:
    """The rules as the table holds them now (the failure path: it also refreshes the copy)."""
    return (await load(session)).get((profile, general_data))


async def fresh_all(session: AsyncSession) -> list[ProfileRules]:
    """Every profile as the table holds it now (``GET /v1/line-profiles``; refreshes the copy too)."""
    return sorted((await load(session)).values(), key=lambda r: (r.profile, r.general_data))
