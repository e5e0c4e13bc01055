"""Takeover bodies and read model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

Ident = Annotated[str, StringConstraints(max_length=40)]


class TakeoverCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_mvno_id: Ident
    to_mvno_id: Ident
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class TakeoverProgress(BaseModel):
    blocks: int
    blocks_total: int
    subscribers: int
    subscribers_total: int
    subscribers_merged: int
    lines: int
    lines_total: int
    reservations: int
    done_ratio: float


class TakeoverRead(BaseModel):
    id: str
    from_mvno_id: str
    to_mvno_id: str
    reason: str
    status: str
    phase: str
    progress: TakeoverProgress
    batches: int
    started_at: datetime
    completed_at: datetime | None


def to_read(row: Any) -> TakeoverRead:
    totals = row["blocks_total"] + row["subscribers_total"] + row["lines_total"]
    moved = row["blocks_moved"] + row["subscribers_moved"] + row["lines_moved"]
    # Never 1.0 before the finishing batch has committed.
    partial = min(moved / totals, 0.999) if totals else 0.0
    ratio = 1.0 if row["status"] == "completed" else partial
    return TakeoverRead(
        id=row["id"],
        from_mvno_id=row["from_mvno_id"],
        to_mvno_id=row["to_mvno_id"],
        reason=row["reason"],
        status=row["status"],
        phase=row["phase"],
        progress=TakeoverProgress(
            blocks=row["blocks_moved"],
            blocks_total=row["blocks_total"],
            subscribers=row["subscribers_moved"],
            subscribers_total=row["subscribers_total"],
            subscribers_merged=row["subscribers_merged"],
            lines=row["lines_moved"],
            lines_total=row["lines_total"],
            reservations=row["reservations_moved"],
            done_ratio=round(ratio, 4),
        ),
        batches=row["batches"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
    )
