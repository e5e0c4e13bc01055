from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from mvno_core.cancellations import reclaims, service
from mvno_core.cancellations.schemas import (
    CancellationCreate,
    CancellationRead,
    Month,
    ReclaimCreate,
    SettlementRead,
)
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.lines.schemas import LineRead

router = APIRouter(prefix="/v1", tags=["cancellations"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


@router.post(
    "/lines/{line_id}/cancellations",
    status_code=status.HTTP_201_CREATED,
    summary="Cancel a line from any province (every blocker reported at once)",
)
async def cancel_line(
    line_id: Annotated[str, Path(max_length=40)], body: CancellationCreate, ctx: Ctx, response: Response
) -> CancellationRead:
    cancellation = await service.cancel(ctx, line_id, body)
    response.headers["Location"] = f"/v1/cancellations/{cancellation.id}"
    return cancellation


@router.get("/cancellations/{cancellation_id}", summary="Get a cancellation")
async def get_cancellation(
    cancellation_id: Annotated[str, Path(max_length=40)], ctx: Ctx
) -> CancellationRead:
    return await service.get_visible(ctx, cancellation_id)


@router.get(
    "/settlements",
    summary="Inter-province settlement of a month (China time): sums per pair and net payments",
)
async def get_settlement(
    ctx: Ctx, month: Annotated[Month, Query(description="YYYY-MM, China time")]
) -> SettlementRead:
    return await service.settlement(ctx, month)


@router.post(
    "/numbers/{msisdn}/reclaims",
    status_code=status.HTTP_201_CREATED,
    response_model=LineRead,
    summary="The previous holder takes a quarantined number back (a new line)",
)
async def reclaim_number(
    msisdn: Annotated[str, Path(max_length=32)], body: ReclaimCreate, ctx: Ctx
) -> Response:
    return (await reclaims.reclaim(ctx, msisdn, body)).response()
