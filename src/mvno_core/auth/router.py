from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from mvno_core.auth import service
from mvno_core.auth.models import ApiKey
from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.principal import Role
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx, OperatorOnly

router = APIRouter(
    prefix="/v1/api-keys",
    tags=["api-keys"],
    route_class=ApiRoute,
    responses=PROBLEM_RESPONSES,
    dependencies=[OperatorOnly],
)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    mvno_id: Annotated[str, StringConstraints(max_length=40)] | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = "unnamed"


class ApiKeyRead(BaseModel):
    id: str
    hint: str
    role: Role
    mvno_id: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str  # the secret: shown in this response only, never again


def to_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        hint=key.hint,
        role=Role(key.role),
        mvno_id=key.mvno_id,
        name=key.name,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key (operator)")
async def create_api_key(body: ApiKeyCreate, ctx: Ctx, response: Response) -> ApiKeyCreated:
    ctx.principal.ensure_operator()
    key, secret = await service.create_key(
        ctx.session, role=body.role, mvno_id=body.mvno_id, name=body.name, ctx=ctx
    )
    response.headers["Location"] = f"/v1/api-keys/{key.id}"
    return ApiKeyCreated(**to_read(key).model_dump(), key=secret)


@router.get("", summary="List API keys (operator; never their secrets)")
async def list_api_keys(ctx: Ctx, cursor: Cursor = None, limit: Limit = 50) -> Page[ApiKeyRead]:
    after = decode_cursor(cursor, str)
    keys = await service.list_keys(ctx.session, after_id=after[0] if after else None, limit=limit + 1)
    return page_of([to_read(k) for k in keys], limit, key=lambda key: key.id)


@router.get("/{key_id}", summary="Get an API key (operator; never the secret)")
async def get_api_key(key_id: str, ctx: Ctx) -> ApiKeyRead:
    return to_read(await service.get_key(ctx.session, key_id))


@router.post("/{key_id}/revoke", summary="Revoke an API key (operator)")
async def revoke_api_key(key_id: str, ctx: Ctx) -> ApiKeyRead:
    ctx.principal.ensure_operator()
    return to_read(await service.revoke_key(ctx.session, key_id, ctx))
