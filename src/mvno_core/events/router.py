from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mvno_core.events import service
from mvno_core.events.types import EVENT_TYPES
from mvno_core.kernel.pagination import (
    CURSOR_MAX_LENGTH,
    CURSOR_PATTERN,
    Limit,
    decode_cursor,
    encode_cursor,
)
from mvno_core.kernel.problems import PROBLEM_RESPONSES, ValidationFailed
from mvno_core.kernel.routing import ApiRoute, Ctx

CURSOR_QUERY: dict[str, Any] = {"min_length": 1, "max_length": CURSOR_MAX_LENGTH, "pattern": CURSOR_PATTERN}
# Exactly the lists the handler accepts: known type names, comma-separated.
_TYPE_NAME = "(" + "|".join(sorted(name.replace(".", r"\.") for name in EVENT_TYPES)) + ")"
TYPES_PATTERN = f"^{_TYPE_NAME}(,{_TYPE_NAME})*$"

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=ApiRoute, responses=PROBLEM_RESPONSES)


class EventSubject(BaseModel):
    kind: str
    id: str


class EventRead(BaseModel):
    id: str
    type: str
    occurred_at: datetime
    mvno_id: str | None
    subject: EventSubject
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventRead]
    # Always set: poll again with it. Moves past everything the poll scanned, matching or not; unchanged
    # only when nothing new has been positioned.
    next_cursor: str


@router.get("", summary="Event feed: poll with after=<next_cursor>; never skips a committed event")
async def list_events(
    ctx: Ctx,
    after: Annotated[str | None, Query(**CURSOR_QUERY, description="next_cursor of the last page")] = None,
    cursor: Annotated[str | None, Query(**CURSOR_QUERY, description="Same as after")] = None,
    types: Annotated[
        str | None, Query(max_length=1000, pattern=TYPES_PATTERN, description="Comma-separated event types")
    ] = None,
    limit: Limit = 50,
) -> EventPage:
    if after is not None and cursor is not None and after != cursor:
        raise ValidationFailed("Give after or cursor, not both.", loc=("query", "after"))
    given, loc = (after, ("query", "after")) if after is not None else (cursor, ("query", "cursor"))
    # The cursor is a feed position (data that travels with the rows). A cursor of the earlier
    # transaction-id feed has two numbers and is refused as malformed: it cannot be mapped.
    decoded = decode_cursor(given, int, loc=loc)
    position = decoded[0] if decoded else 0
    if not 0 <= position < 2**63:
        raise ValidationFailed("Malformed cursor.", loc=loc)
    wanted = [t.strip() for t in types.split(",") if t.strip()] if types is not None else None
    if wanted == []:
        raise ValidationFailed("types names no event type.", loc=("query", "types"))
    unknown = sorted(set(wanted or ()) - EVENT_TYPES)
    if unknown:
        raise ValidationFailed(f"Unknown event types: {', '.join(unknown)}.", loc=("query", "types"))
    page = await service.feed(
        ctx, after=position, types=wanted, limit=limit, scan_window=ctx.settings.feed_scan_window
    )
    items = [
        EventRead(
            id=r["id"],
            type=r["type"],
            occurred_at=r["occurred_at"],
            mvno_id=r["mvno_id"],
            subject=EventSubject(kind=r["subject_kind"], id=r["subject_id"]),
            data=r["data"],
        )
        for r in page.rows
    ]
    return EventPage(items=items, next_cursor=encode_cursor(page.next_position))
