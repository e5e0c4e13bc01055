from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from mvno_core.blocks.repository import BlockRow
from mvno_core.reference.data import Host, province_name
from mvno_core.reference.types import ProvinceCode, SegmentCode


class BlockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment: SegmentCode
    province: ProvinceCode
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    prefix: Annotated[str, StringConstraints(pattern=r"^1[0-9]{6}$")] | None = None


class BlockCounts(BaseModel):
    available: int
    reserved: int
    in_use: int
    quarantined: int


class BlockRead(BaseModel):
    id: str
    prefix: str
    segment: str
    host: Host
    province: str
    province_name: str
    city: str | None
    mvno_id: str
    status: str
    size: int
    allocated_at: datetime
    counts: BlockCounts


EMPTY_COUNTS = {"available": 0, "reserved": 0, "in_use": 0, "quarantined": 0}


def to_read(block: BlockRow, counts: dict[str, int]) -> BlockRead:
    return BlockRead(
        id=block.id,
        prefix=block.prefix,
        segment=block.segment,
        host=Host(block.host),
        province=block.province,
        province_name=province_name(block.province),
        city=block.city,
        mvno_id=block.mvno_id,
        status=block.status,
        size=block.size,
        allocated_at=block.allocated_at,
        counts=BlockCounts(**counts),
    )
