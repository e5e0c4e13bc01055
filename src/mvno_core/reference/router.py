from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.reference.data import HOST_NAMES, PROVINCES, SEGMENTS, Host

router = APIRouter(prefix="/v1", tags=["reference"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


class SegmentRead(BaseModel):
    code: str
    host: Host
    host_name: str
    block_count: int
    first_prefix: str
    last_prefix: str


class ProvinceRead(BaseModel):
    code: str
    name: str
    name_en: str


class SegmentList(BaseModel):
    items: list[SegmentRead]
    next_cursor: None = None  # reference lists fit one page


class ProvinceList(BaseModel):
    items: list[ProvinceRead]
    next_cursor: None = None


@router.get("/segments", summary="MVNO number segments and their host operators")
async def list_segments(_ctx: Ctx) -> SegmentList:
    return SegmentList(
        items=[
            SegmentRead(
                code=s.code,
                host=s.host,
                host_name=HOST_NAMES[s.host],
                block_count=s.block_count,
                first_prefix=str(s.first_prefix),
                last_prefix=str(s.last_prefix),
            )
            for s in SEGMENTS.values()
        ]
    )


@router.get("/provinces", summary="GB/T 2260 province codes")
async def list_provinces(_ctx: Ctx) -> ProvinceList:
    return ProvinceList(
        items=[ProvinceRead(code=c, name=zh, name_en=en) for c, (zh, en) in PROVINCES.items()]
    )
