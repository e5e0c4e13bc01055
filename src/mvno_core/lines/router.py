from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import ValidationError

from mvno_core.kernel.lean import Decline, LeanCall, LeanRoute
from mvno_core.kernel.pagination import Cursor, Limit, Page, decode_cursor, page_of
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.lines import activation, end_users, holds, porting, profiles, service
from mvno_core.lines.lifecycle import LineStatus
from mvno_core.lines.schemas import (
    AccountUpdate,
    DisputeCreate,
    DisputeRead,
    DisputeResolve,
    EndUserCreate,
    EndUserRead,
    HoldCreate,
    HoldLift,
    HoldRead,
    LineCreate,
    LineProfileRead,
    LineRead,
    PortingEligibility,
    ReverificationCreate,
    ReverificationRead,
)
from mvno_core.numbers import msisdn as msisdns

router = APIRouter(prefix="/v1", tags=["lines"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


@router.post(
    "/lines",
    status_code=status.HTTP_201_CREATED,
    response_model=LineRead,
    summary="Activate a line (every gate in one statement)",
)
async def activate_line(body: LineCreate, ctx: Ctx) -> Response:
    return (await activation.activate(ctx, body)).response()


@router.get(
    "/line-profiles", summary="Line profiles and their rules (card cap, voice, SMS, data cap, IMEI, end user)"
)
async def list_line_profiles(ctx: Ctx) -> Page[LineProfileRead]:
    rules = await profiles.fresh_all(ctx.session)
    return Page[LineProfileRead](items=[LineProfileRead(**asdict(r)) for r in rules], next_cursor=None)


async def activate_line_in_lane(call: LeanCall) -> Reply:
    """``POST /v1/lines`` in the lean lane: a body the model refuses goes to the full stack (its 422)."""
    try:
        body = LineCreate.model_validate_json(call.body)
    except ValidationError as exc:
        raise Decline("the body does not validate") from exc
    return await activation.activate_in_lane(call, body)


# Served by the kernel's lean lane first (partners' activations, the hottest write).
LEAN_ROUTES = [LeanRoute("POST", "/v1/lines", activate_line_in_lane)]


@router.get("/lines", summary="List lines (partners see their own)")
async def list_lines(
    ctx: Ctx,
    mvno_id: Annotated[str | None, Query(max_length=40)] = None,
    status: LineStatus | None = None,
    subscriber_id: Annotated[str | None, Query(max_length=40)] = None,
    msisdn: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[LineRead]:
    after = decode_cursor(cursor, str)
    rows = await service.list_visible(
        ctx,
        mvno_id=mvno_id,
        status=status.value if status else None,
        subscriber_id=subscriber_id,
        msisdn=msisdns.normalise(msisdn, loc=("query", "msisdn")) if msisdn else None,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    return page_of(rows, limit, key=lambda line: line.id)


@router.get("/lines/{line_id}", summary="Get a line (with the reasons of its open holds)")
async def get_line(line_id: str, ctx: Ctx) -> LineRead:
    return await service.get_visible(ctx, line_id)


@router.get(
    "/lines/{line_id}/porting-eligibility",
    summary="May this number port to another operator now? Every unmet condition, with its code",
)
async def porting_eligibility(line_id: str, ctx: Ctx) -> PortingEligibility:
    return await porting.eligibility(ctx, line_id)


@router.post(
    "/lines/{line_id}/holds",
    status_code=status.HTTP_201_CREATED,
    summary="Place a hold (suspends the line while any hold is open)",
)
async def place_hold(line_id: str, body: HoldCreate, ctx: Ctx, response: Response) -> HoldRead:
    hold = await holds.place(ctx, line_id, body.reason, body.note)
    response.headers["Location"] = f"/v1/lines/{line_id}/holds/{hold.id}"
    return hold


@router.get("/lines/{line_id}/holds", summary="Every hold of the line, with the reason it can be told")
async def list_holds(line_id: str, ctx: Ctx) -> Page[HoldRead]:
    return Page[HoldRead](items=await holds.list_holds(ctx, line_id), next_cursor=None)


@router.post("/lines/{line_id}/holds/{hold_id}/lift", summary="Lift a hold")
async def lift_hold(line_id: str, hold_id: str, ctx: Ctx, body: HoldLift | None = None) -> HoldRead:
    return await holds.lift(ctx, line_id, hold_id, body.note if body else None)


@router.put(
    "/lines/{line_id}/account", summary="Account snapshot from billing (arrears 0 lifts an arrears hold)"
)
async def put_account(line_id: str, body: AccountUpdate, ctx: Ctx) -> LineRead:
    return await service.update_account(ctx, line_id, body)


@router.post(
    "/lines/{line_id}/reverification-requests",
    status_code=status.HTTP_201_CREATED,
    summary="Ask for a second face check within 24 h (else a reverification hold)",
)
async def request_reverification(line_id: str, body: ReverificationCreate, ctx: Ctx) -> ReverificationRead:
    return await service.request_reverification(ctx, line_id, body.reason)


@router.post(
    "/lines/{line_id}/disputes",
    status_code=status.HTTP_201_CREATED,
    summary='"Not my card": a risk_control hold at once, until the dispute is resolved',
)
async def open_dispute(line_id: str, ctx: Ctx, body: DisputeCreate | None = None) -> DisputeRead:
    return await service.open_dispute(ctx, line_id, body.note if body else None)


@router.post("/disputes/{dispute_id}/resolve", summary="Resolve a dispute (operator)")
async def resolve_dispute(dispute_id: str, body: DisputeResolve, ctx: Ctx) -> DisputeRead:
    return await service.resolve_dispute(ctx, dispute_id, body.outcome)


@router.post(
    "/lines/{line_id}/end-users",
    status_code=status.HTTP_201_CREATED,
    summary="Register the end user of an enterprise's card (replaces the current one; art. 12)",
)
async def register_end_user(line_id: str, body: EndUserCreate, ctx: Ctx, response: Response) -> EndUserRead:
    registered = await end_users.register(ctx, line_id, body)
    response.headers["Location"] = f"/v1/lines/{line_id}/end-users"
    return registered


@router.get("/lines/{line_id}/end-users", summary="End-user registrations of the line, oldest first (masked)")
async def list_end_users(line_id: str, ctx: Ctx) -> Page[EndUserRead]:
    return Page[EndUserRead](items=await end_users.list_visible(ctx, line_id), next_cursor=None)
