from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from mvno_core.blocks import service
from mvno_core.blocks.schemas import BlockCreate, BlockRead
from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx, OperatorOnly
from mvno_core.reference.types import ProvinceCode, SegmentCode

router = APIRouter(prefix="/v1", tags=["blocks"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


@router.post(
    dependencies=[OperatorOnly],
    path="/mvnos/{mvno_id}/blocks",
    status_code=status.HTTP_201_CREATED,
    summary="Allocate an H-code block of 10,000 numbers to an MVNO (operator)",
)
async def allocate_block(mvno_id: str, body: BlockCreate, ctx: Ctx, response: Response) -> BlockRead:
    block = await service.allocate(ctx, mvno_id, body)
    response.headers["Location"] = f"/v1/blocks/{block.id}"
    return block


@router.get("/blocks", summary="List blocks with live counts")
async def list_blocks(
    ctx: Ctx,
    mvno_id: Annotated[str | None, Query(max_length=40)] = None,
    segment: Annotated[SegmentCode | None, Query()] = None,
    province: Annotated[ProvinceCode | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BlockRead]:
    after = decode_cursor(cursor, str)
    rows = await service.list_visible(
        ctx,
        mvno_id=mvno_id,
        segment=segment,
        province=province,
        after_prefix=after[0] if after else None,
        limit=limit + 1,
    )
    return page_of(rows, limit, key=lambda block: block.prefix)


@router.get("/blocks/{block_id}", summary="Get a block with live counts")
async def get_block(block_id: str, ctx: Ctx) -> BlockRead:
    return await service.get_visible(ctx, block_id)
