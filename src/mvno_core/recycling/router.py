from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response, status

from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx, OperatorOnly
from mvno_core.recycling import service
from mvno_core.recycling.schemas import (
    BatchRead,
    BatchSummary,
    PlatformCreate,
    PlatformCreated,
    PlatformRead,
    RecyclingCheck,
    RecyclingCheckResult,
    batch_summary,
    platform_to_read,
)

PlatformId = Annotated[str, Path(max_length=40)]
BatchId = Annotated[str, Path(max_length=40)]

platforms_router = APIRouter(
    prefix="/v1/recycling-platforms", tags=["recycling"], route_class=ApiRoute, responses=PROBLEM_RESPONSES
)
batches_router = APIRouter(
    prefix="/v1/recycling-batches", tags=["recycling"], route_class=ApiRoute, responses=PROBLEM_RESPONSES
)
check_router = APIRouter(
    prefix="/v1/number-recycling", tags=["recycling"], route_class=ApiRoute, responses=PROBLEM_RESPONSES
)


@platforms_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[OperatorOnly],
    summary="Register a recycling platform (operator); its signing secret is shown once",
)
async def register_platform(body: PlatformCreate, ctx: Ctx, response: Response) -> PlatformCreated:
    row, secret = await service.register_platform(ctx, name=body.name, url=body.url)
    response.headers["Location"] = f"/v1/recycling-platforms/{row.id}"
    return PlatformCreated(**platform_to_read(row).model_dump(), secret=secret)


@platforms_router.get("", summary="List recycling platforms (operator, regulator)")
async def list_platforms(
    ctx: Ctx,
    status: Literal["active", "inactive"] | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[PlatformRead]:
    after = decode_cursor(cursor, str)
    rows = await service.list_platforms(
        ctx, status=status, after_id=after[0] if after else None, limit=limit + 1
    )
    return page_of([platform_to_read(r) for r in rows], limit, key=lambda p: p.id)


@platforms_router.get("/{platform_id}", summary="Get a recycling platform (never its secret)")
async def get_platform(platform_id: PlatformId, ctx: Ctx) -> PlatformRead:
    return platform_to_read(await service.get_platform(ctx, platform_id))


@platforms_router.delete(
    "/{platform_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[OperatorOnly],
    summary="Deactivate a recycling platform (operator); its pending deliveries are abandoned",
)
async def deactivate_platform(platform_id: PlatformId, ctx: Ctx) -> Response:
    await service.deactivate_platform(ctx, platform_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@batches_router.get("", summary="Reissue batches, newest first (operator, regulator)")
async def list_batches(
    ctx: Ctx,
    status: Literal["pending", "released"] | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BatchSummary]:
    before = decode_cursor(cursor, str)
    rows = await service.list_batches(
        ctx, status=status, before_id=before[0] if before else None, limit=limit + 1
    )
    return page_of([batch_summary(r) for r in rows], limit, key=lambda b: b.id)


@batches_router.get(
    "/{batch_id}", summary="A reissue batch: its numbers, each platform's delivery, and why it was released"
)
async def get_batch(batch_id: BatchId, ctx: Ctx) -> BatchRead:
    return await service.get_batch(ctx, batch_id)


@check_router.post(
    "/check",
    summary="CAMARA Number Recycling: has the subscriber changed after specifiedDate? (read-only)",
)
async def check(body: RecyclingCheck, ctx: Ctx) -> RecyclingCheckResult:
    changed = await service.phone_number_changed(
        ctx, phone_number=body.phoneNumber, specified_date=body.specifiedDate
    )
    return RecyclingCheckResult(phoneNumChanged=changed)
