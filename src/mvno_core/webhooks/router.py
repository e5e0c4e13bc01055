from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.webhooks import service
from mvno_core.webhooks.schemas import (
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
    delivery_to_read,
    to_read,
)

EndpointId = Annotated[str, Path(max_length=40)]

router = APIRouter(
    prefix="/v1/webhook-endpoints", tags=["webhooks"], route_class=ApiRoute, responses=PROBLEM_RESPONSES
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook endpoint; its signing secret is shown once",
)
async def create_endpoint(
    body: WebhookEndpointCreate, ctx: Ctx, response: Response
) -> WebhookEndpointCreated:
    row, secret = await service.create(ctx, url=body.url, types=body.types, mvno_id=body.mvno_id)
    response.headers["Location"] = f"/v1/webhook-endpoints/{row.id}"
    return WebhookEndpointCreated(**to_read(row, ctx.now).model_dump(), secret=secret)


@router.get("", summary="List webhook endpoints (partners: their own)")
async def list_endpoints(
    ctx: Ctx,
    mvno_id: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[WebhookEndpointRead]:
    after = decode_cursor(cursor, str)
    rows = await service.list_endpoints(
        ctx, mvno_id=mvno_id, after_id=after[0] if after else None, limit=limit + 1
    )
    return page_of([to_read(r, ctx.now) for r in rows], limit, key=lambda e: e.id)


@router.get("/{endpoint_id}", summary="Get a webhook endpoint (never its secret)")
async def get_endpoint(endpoint_id: EndpointId, ctx: Ctx) -> WebhookEndpointRead:
    return to_read(await service.get(ctx, endpoint_id), ctx.now)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a webhook endpoint")
async def delete_endpoint(endpoint_id: EndpointId, ctx: Ctx) -> Response:
    await service.delete(ctx, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id}/rotate-secret",
    summary="New signing secret (shown once); the old one also signs for webhook_secret_grace_hours",
)
async def rotate_secret(endpoint_id: EndpointId, ctx: Ctx) -> WebhookEndpointCreated:
    row, secret = await service.rotate_secret(ctx, endpoint_id)
    return WebhookEndpointCreated(**to_read(row, ctx.now).model_dump(), secret=secret)


@router.get("/{endpoint_id}/deliveries", summary="Delivery attempts, newest first")
async def list_deliveries(
    endpoint_id: EndpointId, ctx: Ctx, cursor: Cursor = None, limit: Limit = 50
) -> Page[WebhookDeliveryRead]:
    before = decode_cursor(cursor, int)
    rows = await service.deliveries(
        ctx, endpoint_id, before_id=before[0] if before else None, limit=limit + 1
    )
    return page_of([delivery_to_read(r) for r in rows], limit, key=lambda d: d.id)
