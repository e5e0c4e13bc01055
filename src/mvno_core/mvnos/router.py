from __future__ import annotations

from fastapi import APIRouter, Response, status

from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx, OperatorOnly
from mvno_core.mvnos import service
from mvno_core.mvnos.schemas import MvnoCreate, MvnoRead, MvnoReinstate, MvnoRestrict, MvnoUpdate

router = APIRouter(prefix="/v1/mvnos", tags=["mvnos"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


@router.post(
    dependencies=[OperatorOnly],
    path="",
    status_code=status.HTTP_201_CREATED,
    summary="Register an MVNO (operator)",
)
async def create_mvno(body: MvnoCreate, ctx: Ctx, response: Response) -> MvnoRead:
    mvno = await service.create(ctx, body)
    response.headers["Location"] = f"/v1/mvnos/{mvno.id}"
    return mvno


@router.get("", summary="List MVNOs (partners see only their own)")
async def list_mvnos(ctx: Ctx, cursor: Cursor = None, limit: Limit = 50) -> Page[MvnoRead]:
    after = decode_cursor(cursor, str)
    rows = await service.list_visible(ctx, after_id=after[0] if after else None, limit=limit + 1)
    return page_of(rows, limit, key=lambda mvno: mvno.id)


@router.get("/{mvno_id}", summary="Get an MVNO")
async def get_mvno(mvno_id: str, ctx: Ctx) -> MvnoRead:
    return await service.get_visible(ctx, mvno_id)


@router.patch(
    dependencies=[OperatorOnly],
    path="/{mvno_id}",
    summary="Update names, licensed provinces, add hosts (operator)",
)
async def update_mvno(mvno_id: str, body: MvnoUpdate, ctx: Ctx) -> MvnoRead:
    return await service.update(ctx, mvno_id, body)


@router.post(
    dependencies=[OperatorOnly],
    path="/{mvno_id}/restrict",
    summary="Restrict (regulator-ordered rectification; operator)",
)
async def restrict_mvno(mvno_id: str, body: MvnoRestrict, ctx: Ctx) -> MvnoRead:
    return await service.restrict(ctx, mvno_id, body.reason)


@router.post(
    dependencies=[OperatorOnly], path="/{mvno_id}/reinstate", summary="Lift a restriction (operator)"
)
async def reinstate_mvno(mvno_id: str, ctx: Ctx, body: MvnoReinstate | None = None) -> MvnoRead:
    return await service.reinstate(ctx, mvno_id, note=body.note if body else None)
