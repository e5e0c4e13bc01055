"""Quarantine end: numbers whose ``quarantine_until`` has passed become ``available`` again (the
sweeper, in batches, one transaction each), each with a ``number.released`` event. The number keeps
``last_cancelled_at``, so ``GET /v1/numbers/{msisdn}/changes`` still reports the holder changed once it
is reissued."""

from __future__ import annotations

from mvno_core.audit.journal import Subject, record_many
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.statements import run_all
from mvno_core.numbers import statements as number_moves

RELEASED_EVENT = "number.released"


async def release_due(ctx: RequestContext, *, batch: int = 1000) -> int:
    """One batch, in the caller's transaction; returns how many numbers were released."""
    released = await run_all(
        ctx.session,
        number_moves.release_quarantined(name="released", now=ctx.now, batch=batch),
        "SELECT r.msisdn, b.mvno_id FROM released r JOIN blocks b ON b.prefix = substr(r.msisdn, 1, 7)",
    )
    await record_many(
        ctx,
        [
            (
                RELEASED_EVENT,
                Subject("number", row["msisdn"]),
                row["mvno_id"],
                {"msisdn": row["msisdn"], "reason": "quarantine_ended"},
            )
            for row in released
        ],
        event_type=RELEASED_EVENT,
    )
    return len(released)
