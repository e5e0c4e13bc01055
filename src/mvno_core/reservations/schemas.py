from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import RowMapping

from mvno_core.numbers.grading import Grade
from mvno_core.reference.types import WHOLE_NUMBER, ProvinceCode, SegmentCode
from mvno_core.reservations.lifecycle import effective_status


class ReservationCriteria(BaseModel):
    model_config = ConfigDict(extra="forbid")

    province: ProvinceCode | None = None
    segment: SegmentCode | None = None
    pattern: Annotated[str, StringConstraints(max_length=32)] | None = None
    grade: Grade | None = Field(default=None, description="Restrict to a grade; any grade if absent.")


class ReservationCreate(BaseModel):
    """Either ``msisdn`` (that number) or ``criteria`` (any available number matching them)."""

    model_config = ConfigDict(extra="forbid")

    mvno_id: Annotated[str, StringConstraints(max_length=40)] | None = None
    msisdn: Annotated[str, StringConstraints(max_length=32)] | None = None
    criteria: ReservationCriteria | None = None
    ttl_seconds: Annotated[int, Field(strict=True, ge=60, le=86_400), WHOLE_NUMBER] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ReservationCreate:
        if (self.msisdn is None) == (self.criteria is None):
            raise ValueError("give exactly one of msisdn or criteria")
        return self


class ReservationRead(BaseModel):
    id: str
    msisdn: str
    mvno_id: str
    status: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None


def to_read(row: RowMapping, now: datetime) -> ReservationRead:
    return ReservationRead(
        id=row["id"],
        msisdn=row["msisdn"],
        mvno_id=row["mvno_id"],
        status=effective_status(row["status"], row["expires_at"], now).value,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        ended_at=row["ended_at"],
    )
