from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import RowMapping

from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.subscribers import service
from mvno_core.subscribers.schemas import (
    IdentityLookupRead,
    IdentityQuery,
    SubscriberCreate,
    SubscriberList,
    SubscriberRead,
    VerificationCreate,
    VerificationRead,
    verification_read,
)

router = APIRouter(
    prefix="/v1/subscribers", tags=["subscribers"], route_class=ApiRoute, responses=PROBLEM_RESPONSES
)
lookups_router = APIRouter(
    prefix="/v1/identity-lookups", tags=["subscribers"], route_class=ApiRoute, responses=PROBLEM_RESPONSES
)


def to_read(row: RowMapping) -> SubscriberRead:
    return SubscriberRead.model_validate(dict(row))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a subscriber (operator, partner)",
    description="Name and ID number are stored encrypted and never returned (masked forms only). "
    "One subscriber per (MVNO, ID): a duplicate is 409 `conflict` with `existing_id`.",
)
async def create_subscriber(body: SubscriberCreate, ctx: Ctx, response: Response) -> SubscriberRead:
    row = await service.create(ctx, body)
    response.headers["Location"] = f"/v1/subscribers/{row['id']}"
    return to_read(row)


@router.post(
    "/search",
    summary="Find subscribers by ID (caller's scope; the regulator may call it)",
)
async def search_subscribers(body: IdentityQuery, ctx: Ctx) -> SubscriberList:
    return SubscriberList(items=[to_read(row) for row in await service.search(ctx, body)])


@router.get("/{subscriber_id}", summary="Get a subscriber")
async def get_subscriber(subscriber_id: str, ctx: Ctx) -> SubscriberRead:
    return to_read(await service.get_visible(ctx, subscriber_id))


@router.post(
    "/{subscriber_id}/verifications",
    status_code=status.HTTP_201_CREATED,
    summary="Record a real-name verification (a passed one verifies the subscriber)",
)
async def create_verification(
    subscriber_id: str, body: VerificationCreate, ctx: Ctx, response: Response
) -> VerificationRead:
    row = await service.record_verification(ctx, subscriber_id, body)
    response.headers["Location"] = f"/v1/subscribers/{subscriber_id}/verifications"
    return verification_read(row)


@router.get("/{subscriber_id}/verifications", summary="A subscriber's verification history, oldest first")
async def list_verifications(
    subscriber_id: str, ctx: Ctx, cursor: Cursor = None, limit: Limit = 50
) -> Page[VerificationRead]:
    after = decode_cursor(cursor, str)
    rows = await service.list_verifications(
        ctx, subscriber_id, after_id=after[0] if after else None, limit=limit + 1
    )
    return page_of([verification_read(r) for r in rows], limit, key=lambda v: v.id)


@lookups_router.post(
    "",
    summary="一证通查: lines under an ID, per MVNO (operator, regulator: all MVNOs; partner: its own)",
)
async def identity_lookup(body: IdentityQuery, ctx: Ctx) -> IdentityLookupRead:
    return await service.identity_lookup(ctx, body)
