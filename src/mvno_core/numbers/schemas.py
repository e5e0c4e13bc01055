from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import RowMapping

from mvno_core.numbers.grading import Grade
from mvno_core.numbers.lifecycle import NumberStatus
from mvno_core.reference.data import Host, province_name


class NumberRead(BaseModel):
    msisdn: str
    status: NumberStatus
    grade: Grade
    block_id: str
    mvno_id: str
    host: Host
    segment: str
    province: str
    province_name: str
    city: str | None
    line_id: str | None = None
    reserved_until: datetime | None = None
    quarantine_until: datetime | None = None
    # When this previously used number was last released to available again (二次号码焕新); apps treat
    # an account bound to it before this instant as someone else's.
    reissued_at: datetime | None = None


class NumberChanges(BaseModel):
    """Recycled-number check (CAMARA Number Recycling style): has the holder changed since ``since``?"""

    msisdn: str
    since: date
    changed: bool
    last_cancelled_at: datetime | None


def to_read(row: RowMapping) -> NumberRead:
    values: dict[str, Any] = dict(row)
    values["province_name"] = province_name(row["province"])
    return NumberRead(**values)
