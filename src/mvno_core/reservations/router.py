from __future__ import annotations

from fastapi import APIRouter, Response, status

from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.reservations import service
from mvno_core.reservations.schemas import ReservationCreate, ReservationRead, to_read

router = APIRouter(
    prefix="/v1/reservations", tags=["reservations"], route_class=ApiRoute, responses=PROBLEM_RESPONSES
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReservationRead,
    summary="Reserve a number (a given msisdn, or any number matching criteria)",
)
async def create_reservation(body: ReservationCreate, ctx: Ctx) -> Response:
    return (await service.reserve(ctx, body)).response()


@router.get("/{reservation_id}", summary="Get a reservation")
async def get_reservation(reservation_id: str, ctx: Ctx) -> ReservationRead:
    return to_read(await service.get_visible(ctx, reservation_id), ctx.now)


@router.delete(
    "/{reservation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Release a reservation (the number is available again at once)",
)
async def release_reservation(reservation_id: str, ctx: Ctx) -> Response:
    await service.release(ctx, reservation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
