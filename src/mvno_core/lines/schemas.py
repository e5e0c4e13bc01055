"""Line, hold, account, re-verification and dispute bodies and read models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import RowMapping
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumError

from mvno_core.lines.lifecycle import REASON_TEXTS, DisputeOutcome, HoldReason, LineStatus, reason_text
from mvno_core.reference.types import Fen
from mvno_core.subscribers.idcheck import IdType
from mvno_core.subscribers.schemas import IdNumber, PersonName

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Ident = Annotated[str, StringConstraints(max_length=40)]


def _valid_iccid(value: str) -> str:
    """ITU-T E.118: 19–20 digits, 89 (telecom) + 86 (China), Luhn check digit (python-stdnum)."""
    if not value.startswith("8986"):
        raise ValueError("an ICCID issued in China starts with 8986")
    try:
        luhn.validate(value)
    except StdnumError as exc:
        raise ValueError("the ICCID's Luhn check digit is wrong") from exc
    return value


Iccid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{19,20}$"),
    AfterValidator(_valid_iccid),
    Field(description="19–20 digits starting 8986, with a valid Luhn check digit (ITU-T E.118)."),
]
Imsi = Annotated[
    str,
    StringConstraints(pattern=r"^460[0-9]{12}$"),
    Field(description="15 digits: MCC 460 + the MNC of the number's host + 10 digits."),
]


def _valid_imei(value: str) -> str:
    """3GPP TS 23.003: 14 digits (TAC + serial) and a Luhn check digit (python-stdnum)."""
    try:
        luhn.validate(value)
    except StdnumError as exc:
        raise ValueError("the IMEI's Luhn check digit is wrong") from exc
    return value


Imei = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{15}$"),
    AfterValidator(_valid_imei),
    Field(description="The device the SIM is locked to: 15 digits with a Luhn check digit (3GPP TS 23.003)."),
]
ProfileName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_]{1,16}$"),
    Field(
        description="A row of `line_profiles` (`GET /v1/line-profiles`); seeded: `consumer`, `iot`, "
        "`industry`. An unknown one is 422 `validation_error`."
    ),
]


class EndUserCreate(BaseModel):
    """The person who uses an enterprise's card (Anti-Telecom-Fraud Law art. 12). Stored encrypted;
    responses, audit entries and events carry only the masked copies."""

    model_config = ConfigDict(extra="forbid")

    name: PersonName
    id_type: IdType = Field(description="A personal document (not `business_license`).")
    id_number: IdNumber


class EndUserRead(BaseModel):
    id: str
    line_id: str
    name_masked: str
    id_type: IdType
    id_number_masked: str
    registered_at: datetime
    replaced_at: datetime | None = Field(description="Set when a later registration replaced this one.")


class LineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriber_id: Ident
    msisdn: Annotated[str, StringConstraints(max_length=32)]
    reservation_id: Ident | None = Field(
        default=None, description="Optional: the MVNO's live reservation of this number (it is consumed)."
    )
    iccid: Iccid
    imsi: Imsi
    plan_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    contract_end: date | None = Field(default=None, description="Required for premium numbers.")
    profile: ProfileName = "consumer"
    general_data: bool = Field(
        default=False,
        description="General (unrestricted, 通用流量) data rather than directional data; IoT cards with "
        "general data have their own card cap (10 per ID as seeded). Only profiles with such a row "
        "accept `true`.",
    )
    imei: Imei | None = Field(
        default=None, description="Required where the profile locks the SIM to a device."
    )
    end_user: EndUserCreate | None = Field(
        default=None,
        description="Enterprise subscribers only: the card's end user. Required where the profile asks "
        "enterprises to register one (iot, industry as seeded); 422 for an individual subscriber.",
    )


class AccountRead(BaseModel):
    balance_fen: int
    arrears_fen: int
    overdue_since: date | None
    updated_at: datetime | None


class LineRead(BaseModel):
    id: str
    msisdn: str
    subscriber_id: str
    mvno_id: str
    status: LineStatus
    iccid: str
    imsi: str
    plan_code: str | None
    contract_end: date | None
    activated_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    open_holds: list[HoldReason] = Field(description="Why the line is suspended (empty when active).")
    account: AccountRead
    profile: str
    general_data: bool
    voice_enabled: bool
    sms_enabled: bool
    data_cap_mb: int | None = Field(description="Monthly data cap in MB the profile sets (null: none).")
    imei: str | None = Field(description="The device the SIM is locked to (a device identity, shown plain).")


class LineProfileRead(BaseModel):
    profile: str
    general_data: bool
    cap_class: str = Field(description="Profiles of one cap class share one card counter per ID.")
    card_cap: int
    voice_enabled: bool
    sms_enabled: bool
    data_cap_mb: int | None
    imei_required: bool
    end_user_required: bool = Field(description="Enterprise subscribers must register the end user.")


def line_to_read(row: RowMapping, open_holds: list[str]) -> LineRead:
    return LineRead(
        id=row["id"],
        msisdn=row["msisdn"],
        subscriber_id=row["subscriber_id"],
        mvno_id=row["mvno_id"],
        status=LineStatus(row["status"]),
        iccid=row["iccid"],
        imsi=row["imsi"],
        plan_code=row["plan_code"],
        contract_end=row["contract_end"],
        activated_at=row["activated_at"],
        ended_at=row["ended_at"],
        end_reason=row["end_reason"],
        open_holds=[HoldReason(reason) for reason in sorted(open_holds)],
        account=AccountRead(
            balance_fen=row["balance_fen"],
            arrears_fen=row["arrears_fen"],
            overdue_since=row["overdue_since"],
            updated_at=row["account_updated_at"],
        ),
        profile=row["profile"],
        general_data=row["general_data"],
        voice_enabled=row["voice_enabled"],
        sms_enabled=row["sms_enabled"],
        data_cap_mb=row["data_cap_mb"],
        imei=row["imei"],
    )


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: HoldReason
    note: Note | None = None


class HoldLift(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class ReasonTexts(BaseModel):
    zh: str
    en: str


class HoldRead(BaseModel):
    id: str
    line_id: str
    reason: HoldReason
    reason_text: str = Field(description="What the subscriber is told: Chinese / English.")
    reason_texts: ReasonTexts
    note: str | None
    placed_by_role: str
    placed_at: datetime
    lifted_at: datetime | None
    lifted_by_role: str | None
    lift_note: str | None


def hold_to_read(row: RowMapping | dict[str, Any]) -> HoldRead:
    reason = HoldReason(row["reason"])
    texts = REASON_TEXTS[reason]
    return HoldRead(
        id=row["id"],
        line_id=row["line_id"],
        reason=reason,
        reason_text=reason_text(reason),
        reason_texts=ReasonTexts(zh=texts.zh, en=texts.en),
        note=row["note"],
        placed_by_role=row["placed_by_role"],
        placed_at=row["placed_at"],
        lifted_at=row["lifted_at"],
        lifted_by_role=row["lifted_by_role"],
        lift_note=row["lift_note"],
    )


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    balance_fen: Fen
    arrears_fen: Fen
    overdue_since: date | None = Field(
        default=None, description="First day a bill went unpaid; with arrears, 30 days later an arrears hold."
    )


class ReverificationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Note


class ReverificationRead(BaseModel):
    id: str
    line_id: str
    subscriber_id: str
    reason: str
    status: str
    created_at: datetime
    deadline_at: datetime
    resolved_at: datetime | None


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class DisputeResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: DisputeOutcome


class DisputeRead(BaseModel):
    id: str
    line_id: str
    msisdn: str
    status: str
    hold_id: str
    note: str | None
    opened_at: datetime
    resolved_at: datetime | None


class PortingReason(BaseModel):
    code: str = Field(
        description="real_name_unverified | line_not_normal | arrears_outstanding | contract_active | "
        "ported_recently | segment_not_portable"
    )
    detail: str
    amount_fen: int | None = None
    contract_end: date | None = None


class PortingEligibility(BaseModel):
    line_id: str
    eligible: bool
    reasons: list[PortingReason]
