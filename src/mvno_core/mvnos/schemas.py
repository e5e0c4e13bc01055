from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from mvno_core.reference.data import Host
from mvno_core.reference.types import ProvinceCode

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MvnoCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{2,32}$")]


def _dedupe_provinces(codes: list[str]) -> list[str]:
    return sorted(set(codes))


def _dedupe_hosts(hosts: list[Host]) -> list[Host]:
    return sorted(set(hosts))


ProvinceList = Annotated[
    list[ProvinceCode], Field(min_length=1, max_length=40), AfterValidator(_dedupe_provinces)
]
HostList = Annotated[list[Host], Field(min_length=1, max_length=3), AfterValidator(_dedupe_hosts)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MvnoCreate(StrictModel):
    code: MvnoCode = Field(description="Unique slug, [a-z0-9-]{2,32}.")
    name: Text200
    legal_name: Text200
    license_no: Text200
    hosts: HostList
    licensed_provinces: ProvinceList


class MvnoUpdate(StrictModel):
    """Names, licensed provinces (replaced), hosts (added only: existing hosts cannot be removed)."""

    name: Text200 | None = None
    legal_name: Text200 | None = None
    licensed_provinces: ProvinceList | None = None
    hosts: HostList | None = None


class MvnoRestrict(StrictModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class MvnoReinstate(StrictModel):
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class MvnoRead(BaseModel):
    id: str
    code: str
    name: str
    legal_name: str
    license_no: str
    hosts: list[Host]
    licensed_provinces: list[str]
    licensed_province_names: list[str]
    status: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime
