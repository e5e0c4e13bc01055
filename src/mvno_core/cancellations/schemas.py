"""Cancellation, settlement and reclaim bodies and read models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mvno_core.lines.schemas import Iccid, Imsi
from mvno_core.reference.types import Fen, ProvinceCode
from mvno_core.subscribers.lifecycle import VerificationMethod, VerificationResult


class IdentityCheck(BaseModel):
    """The check done at the service point before the cancellation (a face match, say)."""

    model_config = ConfigDict(extra="forbid")

    method: VerificationMethod
    result: VerificationResult


class CancellationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requested_province: ProvinceCode = Field(description="Where the subscriber asks (any province).")
    identity_check: IdentityCheck
    arrears_paid_fen: Fen | None = Field(
        default=None, description="Arrears paid at the counter now; must cover them all."
    )
    accept_contract_penalty: bool = False


class CancellationRead(BaseModel):
    id: str
    line_id: str
    msisdn: str
    mvno_id: str
    status: str
    home_province: str
    home_province_name: str
    requested_province: str
    requested_province_name: str
    cross_province: bool
    refund_fen: int
    arrears_settled_fen: int
    penalty_accepted: bool
    completed_at: datetime


class SettlementPair(BaseModel):
    from_province: str = Field(description="Home province (the number's block).")
    to_province: str = Field(description="Requested province (where the subscriber cancelled).")
    entries: int
    refund_fen: int = Field(description="Refunds paid by to_province on from_province's behalf.")
    arrears_fen: int = Field(description="Arrears collected by to_province on from_province's behalf.")


class SettlementNet(BaseModel):
    payer_province: str
    payee_province: str
    amount_fen: int


class SettlementRead(BaseModel):
    month: str
    timezone: str = Field(description="The month is a calendar month in China time.")
    starts_at: datetime
    ends_at: datetime
    pairs: list[SettlementPair]
    net: list[SettlementNet]


# Years 2000–2099: settlement months are of this service's lifetime, and the bounds keep the month's
# window computable (no year 0, no year 10000).
Month = Annotated[str, StringConstraints(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]


class ReclaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriber_id: Annotated[str, StringConstraints(max_length=40)]
    iccid: Iccid
    imsi: Imsi
