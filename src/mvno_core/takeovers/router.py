from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Request, Response, status

from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.takeovers import service, worker
from mvno_core.takeovers.schemas import TakeoverCreate, TakeoverRead

router = APIRouter(prefix="/v1", tags=["takeovers"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


@router.post(
    "/takeovers",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start an MVNO exit takeover (operator); it runs in committed batches",
)
async def start_takeover(
    body: TakeoverCreate, ctx: Ctx, request: Request, response: Response, background: BackgroundTasks
) -> TakeoverRead:
    takeover = await service.start(ctx, body)
    response.headers["Location"] = f"/v1/takeovers/{takeover.id}"
    state = request.app.state
    # Runs after the response is sent, i.e. after the request's transaction committed.
    background.add_task(worker.kick, state.db, state.clock, state.settings, takeover.id)
    return takeover


@router.get("/takeovers/{takeover_id}", summary="A takeover's progress")
async def get_takeover(takeover_id: Annotated[str, Path(max_length=40)], ctx: Ctx) -> TakeoverRead:
    return await service.get_visible(ctx, takeover_id)
