"""Re-encrypting names and ID numbers under the active PII key (``mvno-core pii rotate-key``).

Keys rotate by adding a new key to the key ring and making it ``active``: new rows use it at once, old
rows stay readable with theirs. This job then re-seals the old rows, one committed batch at a time
(``FOR UPDATE SKIP LOCKED``, so it runs beside the service and beside another run of itself), until no
row uses another key; after that the old keys can be retired. Interrupted, it resumes where it stopped:
a row is sealed with one key or the other, never half. The blind index has its own key and is not
touched (changing it would mean recomputing every index from the plaintext, a different job).

A pass walks the subscribers once in id order, each batch starting after the last id of the one before
(a keyset cursor): restarting every batch from the first id re-read every row already done, and counting
the rows left after every batch read the whole table again, both quadratic (``bench/pii.py`` measured it).
Rows skipped because running work held them locked are picked up by the next pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.subscribers import pii, repository


@dataclass(slots=True)
class RotationBatch:
    rekeyed: int
    # The cursor: the next batch of this pass starts after this id. None: the pass is done.
    last_id: str | None


async def rotate_batch(
    ctx: RequestContext, ring: pii.KeyRing, *, batch: int, after_id: str | None = None
) -> RotationBatch:
    """Re-seal up to ``batch`` subscribers not yet under the active key with ids after ``after_id``, in
    the caller's transaction, with one audit entry and event for the batch (no personal data in
    either)."""
    rows = await repository.sealed_with_other_keys(ctx.session, ring.active_key_id, batch, after_id=after_id)
    updates = []
    for row in rows:
        subscriber_id = row["id"]
        name_context, id_context = f"subscriber:{subscriber_id}:name", f"subscriber:{subscriber_id}:id_number"
        updates.append(
            (
                subscriber_id,
                ring.encrypt(
                    ring.decrypt(row["name_ciphertext"], context=name_context), context=name_context
                ),
                ring.encrypt(
                    ring.decrypt(row["id_number_ciphertext"], context=id_context), context=id_context
                ),
            )
        )
    if updates:
        await repository.reseal(ctx.session, updates)
        await record(
            ctx,
            action="pii.rekeyed",
            subject=Subject("pii_key", ring.active_key_id),
            mvno_id=None,
            data={
                "subscribers": len(updates),
                "from_keys": sorted({pii.key_id_of(r["name_ciphertext"]) for r in rows}),
            },
            event_type="pii.rekeyed",
        )
    # A short batch reached the end of the table (rows locked by others are skipped, not waited for).
    return RotationBatch(rekeyed=len(updates), last_id=rows[-1]["id"] if len(rows) == batch else None)


async def remaining(session: AsyncSession, ring: pii.KeyRing) -> int:
    """Subscribers still sealed with another key (one read of the whole table)."""
    return await repository.count_sealed_with_other_keys(session, ring.active_key_id)


async def rotate_all(
    db: Database,
    context: Callable[[AsyncSession], RequestContext],
    ring: pii.KeyRing,
    *,
    batch: int,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Passes over every subscriber, one committed transaction per batch, until none is left or a pass
    re-seals nothing (the rest is held by running work); returns how many are left. ``on_batch`` gets
    the running total after each batch."""
    total = 0
    while True:
        rekeyed_in_pass, after_id = 0, None
        while True:
            async with db.transaction() as session:
                done = await rotate_batch(context(session), ring, batch=batch, after_id=after_id)
            total += done.rekeyed
            rekeyed_in_pass += done.rekeyed
            if on_batch is not None:
                on_batch(total)
            if done.last_id is None:
                break
            after_id = done.last_id
        async with db.transaction() as session:
            left = await remaining(session, ring)
        if left == 0 or rekeyed_in_pass == 0:
            return left
