"""Writes of lines, holds and the subscriber's card counter, as statement pieces (``kernel.statements``)."""

from __future__ import annotations

from datetime import date, datetime

from mvno_core.kernel.statements import Piece

LINE_COLUMNS = (
    "id, msisdn, subscriber_id, mvno_id, status, iccid, imsi, plan_code, contract_end, activated_at, "
    "ended_at, end_reason, balance_fen, arrears_fen, overdue_since, account_updated_at, profile, "
    "general_data, voice_enabled, sms_enabled, data_cap_mb, imei"
)


# "This subscriber owes a re-verification past its deadline" (over subscribers ``s``): activation is
# refused until a passed verification satisfies it. Written once, for the gate and its explanation.
REVERIFICATION_OVERDUE_SQL = (
    "EXISTS (SELECT 1 FROM reverification_requests r WHERE r.subscriber_id = s.id "
    "AND r.status IN ('pending', 'overdue') AND r.deadline_at <= :now)"
)


def line_profile(
    *,
    name: str,
    profile: str,
    general_data: bool,
    voice_enabled: bool,
    sms_enabled: bool,
    data_cap_mb: int | None,
    subscriber_id: str,
    imei_given: bool,
    end_user_given: bool,
    gate: str | None = None,
) -> Piece:
    """The ``line_profiles`` row the line is activated under, if the request meets its rules: an IMEI
    where the profile locks the SIM to a device, an end user where an enterprise subscriber must
    register one (and none for an individual, who is the user). The row must still show the voice,
    SMS and data cap the caller put in its response (decided before the statement runs), so a profile
    changed meanwhile refuses instead of answering with stale rules. Returns the row's rules."""
    gate_sql = f" AND EXISTS (SELECT 1 FROM {gate})" if gate else ""
    return Piece(
        name,
        "SELECT p.profile, p.general_data, p.cap_class, p.card_cap, p.voice_enabled, p.sms_enabled, "
        "p.data_cap_mb FROM line_profiles p JOIN subscribers s ON s.id = :subscriber_id "
        "WHERE p.profile = :profile AND p.general_data = :general_data "
        "AND p.voice_enabled = :voice_enabled AND p.sms_enabled = :sms_enabled "
        "AND p.data_cap_mb IS NOT DISTINCT FROM CAST(:data_cap_mb AS integer) "
        "AND (NOT p.imei_required OR CAST(:imei_given AS boolean)) "
        "AND CASE WHEN s.kind = 'enterprise' "
        "THEN NOT p.end_user_required OR CAST(:end_user_given AS boolean) "
        f"ELSE NOT CAST(:end_user_given AS boolean) END{gate_sql}",
        {
            "subscriber_id": subscriber_id,
            "profile": profile,
            "general_data": general_data,
            "voice_enabled": voice_enabled,
            "sms_enabled": sms_enabled,
            "data_cap_mb": data_cap_mb,
            "imei_given": imei_given,
            "end_user_given": end_user_given,
        },
    )


def take_card_slot(
    *, name: str, subscriber_id: str, mvno_id: str, profile: str, now: datetime, gate: str | None = None
) -> list[Piece]:
    """The card cap, race-free, for the cap class of the row in CTE ``profile``: the subscriber's
    total counter goes up (locking the subscriber's row, so two activations for one ID serialise there
    and never count lines), then the class counter in ``card_slots`` goes up only while below the
    profile's ``card_cap`` (an upsert: the first line of a class creates its row). The subscriber must
    be verified and owe no overdue re-verification (先实名后开通). ``name`` returns ``id`` and
    ``live_lines`` (the class count) only if a slot was taken; when it is empty the statement must not
    commit (the caller raises, which rolls the total back)."""
    gate_sql = f" AND EXISTS (SELECT 1 FROM {gate})" if gate else ""
    total = f"{name}_total"
    return [
        Piece(
            total,
            "UPDATE subscribers s SET live_lines = s.live_lines + 1, updated_at = :now "
            f"FROM {profile} p WHERE s.id = :subscriber_id AND s.mvno_id = :mvno_id "
            f"AND s.real_name_status = 'verified' AND NOT {REVERIFICATION_OVERDUE_SQL}{gate_sql} "
            "RETURNING s.id, p.cap_class, p.card_cap",
            {"subscriber_id": subscriber_id, "mvno_id": mvno_id, "now": now},
        ),
        Piece(
            name,
            "INSERT INTO card_slots AS c (subscriber_id, cap_class, live_lines, updated_at) "
            f"SELECT t.id, t.cap_class, 1, :now FROM {total} t "
            "ON CONFLICT (subscriber_id, cap_class) DO UPDATE SET live_lines = c.live_lines + 1, "
            f"updated_at = EXCLUDED.updated_at WHERE c.live_lines < (SELECT t.card_cap FROM {total} t) "
            "RETURNING c.subscriber_id AS id, c.live_lines",
            {"now": now},
        ),
    ]


def insert_line(
    *,
    name: str,
    claimed: str,
    profile: str,
    line_id: str,
    subscriber_id: str,
    mvno_id: str,
    iccid: str,
    imsi: str,
    plan_code: str | None,
    contract_end: date | None,
    imei: str | None,
    now: datetime,
    key_id: str,
) -> Piece:
    """The line on the number in CTE ``claimed``, with the rules of the profile row in CTE ``profile``.
    An ICCID, IMSI or IMEI already on a live line (or a second live line on the number) inserts nothing
    (``ON CONFLICT DO NOTHING``): the caller then says which."""
    return Piece(
        name,
        "INSERT INTO lines (id, msisdn, subscriber_id, mvno_id, status, iccid, imsi, plan_code, "
        "contract_end, activated_at, created_by_key_id, profile, general_data, cap_class, voice_enabled, "
        "sms_enabled, data_cap_mb, imei) "
        f"SELECT :line_id, c.msisdn, :subscriber_id, :mvno_id, 'active', :iccid, :imsi, :plan_code, "
        "CAST(:contract_end AS date), :now, :key_id, p.profile, p.general_data, p.cap_class, "
        f"p.voice_enabled, p.sms_enabled, p.data_cap_mb, CAST(:imei AS text) FROM {claimed} c, {profile} p "
        f"ON CONFLICT DO NOTHING RETURNING {LINE_COLUMNS}",
        {
            "line_id": line_id,
            "subscriber_id": subscriber_id,
            "mvno_id": mvno_id,
            "iccid": iccid,
            "imsi": imsi,
            "plan_code": plan_code,
            "contract_end": contract_end,
            "imei": imei,
            "now": now,
            "key_id": key_id,
        },
    )


def end_lines(*, name: str, source: str, reason: str, now: datetime) -> list[Piece]:
    """End the live lines whose ids are in ``source.line_id``: ``cancelled`` with ``reason``, and each
    subscriber's card counters down by one: the total and the line's cap class. Returns ``id, msisdn,
    subscriber_id, mvno_id, cap_class``."""
    return [
        Piece(
            name,
            "UPDATE lines l SET status = 'cancelled', ended_at = :now, end_reason = :end_reason "
            f"FROM {source} s WHERE l.id = s.line_id AND l.status <> 'cancelled' "
            "RETURNING l.id, l.id AS line_id, l.msisdn, l.subscriber_id, l.mvno_id, l.cap_class",
            {"now": now, "end_reason": reason},
        ),
        Piece(
            f"{name}_slots",
            "UPDATE subscribers s SET live_lines = s.live_lines - e.lines, updated_at = :now "
            f"FROM (SELECT subscriber_id, count(*) AS lines FROM {name} GROUP BY subscriber_id) e "
            "WHERE s.id = e.subscriber_id RETURNING s.id",
            {"now": now},
        ),
        Piece(
            f"{name}_classes",
            "UPDATE card_slots c SET live_lines = c.live_lines - e.lines, updated_at = :now "
            f"FROM (SELECT subscriber_id, cap_class, count(*) AS lines FROM {name} "
            "GROUP BY subscriber_id, cap_class) e "
            "WHERE c.subscriber_id = e.subscriber_id AND c.cap_class = e.cap_class RETURNING c.subscriber_id",
            {"now": now},
        ),
    ]
