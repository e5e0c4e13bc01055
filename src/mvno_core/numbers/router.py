from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.numbers import msisdn as msisdns
from mvno_core.numbers import service
from mvno_core.numbers.grading import Grade
from mvno_core.numbers.lifecycle import NumberStatus
from mvno_core.numbers.schemas import NumberChanges, NumberRead
from mvno_core.reference.types import ProvinceCode, SegmentCode

# Declares what msisdns.normalise accepts (11 digits from 1, optional +86/86, separators) so the schema
# admits no path the handler refuses.
MsisdnPath = Annotated[str, Path(pattern=r"^(\+?86)?[ -]?1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}$")]

router = APIRouter(prefix="/v1/numbers", tags=["numbers"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


@router.get("", summary="Search numbers (pattern: ? one digit, * any run; over all 11 digits)")
async def search_numbers(
    ctx: Ctx,
    mvno_id: Annotated[str | None, Query(max_length=40)] = None,
    status: NumberStatus | None = None,
    province: Annotated[ProvinceCode | None, Query()] = None,
    segment: Annotated[SegmentCode | None, Query()] = None,
    grade: Grade | None = None,
    pattern: Annotated[
        str | None, Query(max_length=32, examples=["*8888", "1700123*", "*520*", "1710000??88"])
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[NumberRead]:
    after = decode_cursor(cursor, str)
    rows = await service.search(
        ctx,
        mvno_id=mvno_id,
        status=status.value if status else None,
        province=province,
        segment=segment,
        grade=grade.value if grade else None,
        pattern=pattern,
        after_msisdn=after[0] if after else None,
        limit=limit + 1,
    )
    return page_of(rows, limit, key=lambda number: number.msisdn)


@router.get("/{msisdn}", summary="Get one number")
async def get_number(msisdn: MsisdnPath, ctx: Ctx) -> NumberRead:
    return await service.get_visible(ctx, msisdns.normalise(msisdn))


@router.get("/{msisdn}/changes", summary="Has the holder changed since a date? (recycled numbers)")
async def number_changes(
    msisdn: MsisdnPath, ctx: Ctx, since: Annotated[date, Query(description="YYYY-MM-DD")]
) -> NumberChanges:
    return await service.changes_since(ctx, msisdns.normalise(msisdn), since)
