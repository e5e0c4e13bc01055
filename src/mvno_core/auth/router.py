from __future__ import annotations

from fastapi import APIRouter, Response, status

from mvno_core.auth import service
from mvno_core.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx, OperatorOnly

router = APIRouter(
    prefix="/v1/api-keys",
    tags=["api-keys"],
    route_class=ApiRoute,
    responses=PROBLEM_RESPONSES,
    dependencies=[OperatorOnly],
)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key (operator)")
async def create_api_key(body: ApiKeyCreate, ctx: Ctx, response: Response) -> ApiKeyCreated:
    ctx.principal.ensure_operator()
    created = await service.create_key(
        ctx,
        role=body.role,
        mvno_id=body.mvno_id,
        name=body.name,
        recycling_platform_id=body.recycling_platform_id,
    )
    response.headers["Location"] = f"/v1/api-keys/{created.id}"
    return created


@router.get("", summary="List API keys (operator; never their secrets)")
async def list_api_keys(ctx: Ctx, cursor: Cursor = None, limit: Limit = 50) -> Page[ApiKeyRead]:
    after = decode_cursor(cursor, str)
    keys = await service.list_keys(ctx, after_id=after[0] if after else None, limit=limit + 1)
    return page_of(keys, limit, key=lambda key: key.id)


@router.get("/{key_id}", summary="Get an API key (operator; never the secret)")
async def get_api_key(key_id: str, ctx: Ctx) -> ApiKeyRead:
    return await service.get_key(ctx, key_id)


@router.post("/{key_id}/revoke", summary="Revoke an API key (operator)")
async def revoke_api_key(key_id: str, ctx: Ctx) -> ApiKeyRead:
    ctx.principal.ensure_operator()
    return await service.revoke_key(ctx, key_id)
