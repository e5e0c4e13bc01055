from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mvno_core.kernel.clock import CHINA_TIME
from mvno_core.kernel.problems import PROBLEM_RESPONSES
from mvno_core.kernel.routing import ApiRoute, Ctx
from mvno_core.stats import service

NUMBER_STATUSES = ("available", "reserved", "in_use", "quarantined")
LINE_STATUSES = ("active", "suspended", "cancelled")

router = APIRouter(prefix="/v1/stats", tags=["stats"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


class DayCounts(BaseModel):
    date: date  # a China Standard Time calendar day
    activations: int
    cancellations: int  # lines ended that day, whatever the reason


class SubscriberCounts(BaseModel):
    total: int
    verified: int
    verified_share: float  # verified / total; 0 when there are none


class Stats(BaseModel):
    mvno_id: str | None  # null: every MVNO
    numbers_by_status: dict[str, int]
    lines_by_status: dict[str, int]
    open_holds_by_reason: dict[str, int]
    # The last 30 days including today (China time), oldest first.
    daily: list[DayCounts]
    subscribers: SubscriberCounts


@router.get("", summary="Counts: numbers, lines, open holds, activations and cancellations per day")
async def get_stats(
    ctx: Ctx,
    mvno_id: Annotated[
        str | None, Query(max_length=40, description="One MVNO (partners: their own only)")
    ] = None,
) -> Stats:
    today = ctx.now.astimezone(CHINA_TIME).date()
    first_day = today - timedelta(days=service.DAYS - 1)
    row = await service.stats(ctx, mvno_id=mvno_id, today=today, first_day=first_day)
    total, verified = int(row["total"]), int(row["verified"])
    return Stats(
        mvno_id=row["mvno_id"],
        numbers_by_status={status: int(row["numbers"].get(status, 0)) for status in NUMBER_STATUSES},
        lines_by_status={status: int(row["lines"].get(status, 0)) for status in LINE_STATUSES},
        open_holds_by_reason={reason: int(n) for reason, n in sorted(row["holds"].items())},
        daily=[
            DayCounts(date=date.fromisoformat(day), activations=a, cancellations=c)
            for day, a, c in row["daily"]
        ],
        subscribers=SubscriberCounts(
            total=total, verified=verified, verified_share=round(verified / total, 4) if total else 0.0
        ),
    )
