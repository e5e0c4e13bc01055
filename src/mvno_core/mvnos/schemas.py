from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from mvno_core.mvnos.models import Mvno
from mvno_core.reference.data import Host, province_name
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


def to_read(mvno: Mvno) -> MvnoRead:
    return MvnoRead(
        id=mvno.id,
        code=mvno.code,
        name=mvno.name,
        legal_name=mvno.legal_name,
        license_no=mvno.license_no,
        hosts=mvno.hosts,
        licensed_provinces=list(mvno.licensed_provinces),
        licensed_province_names=[province_name(p) for p in mvno.licensed_provinces],
        status=mvno.status,
        status_reason=mvno.status_reason,
        created_at=mvno.created_at,
        updated_at=mvno.updated_at,
    )
