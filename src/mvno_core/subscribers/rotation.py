"""Re-encrypting names and ID numbers under the active PII key (``mvno-core pii rotate-key``).

Keys rotate by adding a new key to the key ring and making it ``active``: new rows use it at once, old
rows stay readable with theirs. This job then re-seals the old rows, one committed batch at a time
(``FOR UPDATE SKIP LOCKED``, so it runs beside the service and beside another run of itself), until no
row uses another key; after that the old keys can be retired. Interrupted, it resumes where it stopped:
a row is sealed with one key or the other, never half. The blind index has its own key and is not
touched (changing it would mean recomputing every index from the plaintext, a different job).

Four tables hold values sealed with this ring (``repository.SEALED``): names and ID numbers of
``subscribers`` and ``line_end_users`` (the people using an enterprise's cards), and the signing secrets
of ``webhook_endpoints`` and ``recycling_platforms``. ``remaining`` counts them all, so "0 left" means no
value anywhere still needs an old key, and it can be retired.

A pass walks each table once in id order, each batch starting after the last id of the one before (a
keyset cursor): restarting every batch from the first id re-read every row already done, and counting
the rows left after every batch read the whole table again, both quadratic (``bench/pii.py`` measured
it). Rows skipped because running work held them locked are picked up by the next pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database
from mvno_core.subscribers import pii, repository
from mvno_core.subscribers.repository import SEALED, SEALED_TABLES, SealedTable


@dataclass(slots=True)
class RotationBatch:
    table: SealedTable
    rekeyed: int
    # The cursor: the next batch of this pass starts after this id. None: the pass over the table is done.
    last_id: str | None


async def rotate_batch(
    ctx: RequestContext,
    ring: pii.KeyRing,
    *,
    batch: int,
    table: SealedTable = "subscribers",
    after_id: str | None = None,
) -> RotationBatch:
    """Re-seal up to ``batch`` rows of ``table`` not yet under the active key with ids after
    ``after_id``, in the caller's transaction, with one audit entry and event for the batch (no personal
    data in either)."""
    rows = await repository.sealed_with_other_keys(
        ctx.session, ring.active_key_id, batch, table=table, after_id=after_id
    )
    sealed = SEALED[table]
    updates: list[tuple[str, tuple[bytes | None, ...]]] = []
    from_keys: set[str] = set()
    for row in rows:
        values: list[bytes | None] = []
        for column, field in sealed.columns:
            blob = row[column]
            if blob is None:
                values.append(None)
                continue
            from_keys.add(pii.key_id_of(blob))
            context = f"{sealed.prefix}:{row['id']}:{field}"
            values.append(ring.encrypt(ring.decrypt(blob, context=context), context=context))
        updates.append((row["id"], tuple(values)))
    if updates:
        await repository.reseal(ctx.session, updates, table=table)
        counts = {other.counted_as: 0 for other in SEALED.values()}
        counts[sealed.counted_as] = len(updates)
        await record(
            ctx,
            action="pii.rekeyed",
            subject=Subject("pii_key", ring.active_key_id),
            mvno_id=None,
            data={**counts, "from_keys": sorted(from_keys)},
            event_type="pii.rekeyed",
        )
    # A short batch reached the end of the table (rows locked by others are skipped, not waited for).
    last_id = rows[-1]["id"] if len(rows) == batch else None
    return RotationBatch(table=table, rekeyed=len(updates), last_id=last_id)


async def remaining_by_table(session: AsyncSession, ring: pii.KeyRing) -> dict[SealedTable, int]:
    """Rows of each sealed table still under another key (one read of each table)."""
    return {
        table: await repository.count_sealed_with_other_keys(session, ring.active_key_id, table=table)
        for table in SEALED_TABLES
    }


async def remaining(session: AsyncSession, ring: pii.KeyRing) -> int:
    """Rows of any sealed table still under another key."""
    return sum((await remaining_by_table(session, ring)).values())


async def rotate_all(
    db: Database,
    context: Callable[[AsyncSession], RequestContext],
    ring: pii.KeyRing,
    *,
    batch: int,
    on_batch: Callable[[dict[SealedTable, int]], None] | None = None,
) -> int:
    """Passes over every sealed table, one committed transaction per batch, until no row is left or a pass
    re-seals nothing (the rest is held by running work); returns how many are left. ``on_batch`` gets
    the running totals per table after each batch."""
    totals: dict[SealedTable, int] = dict.fromkeys(SEALED_TABLES, 0)
    while True:
        rekeyed_in_pass = 0
        for table in SEALED_TABLES:
            after_id: str | None = None
            while True:
                async with db.transaction() as session:
                    done = await rotate_batch(
                        context(session), ring, batch=batch, table=table, after_id=after_id
                    )
                totals[table] += done.rekeyed
                rekeyed_in_pass += done.rekeyed
                if on_batch is not None:
                    on_batch(totals)
                if done.last_id is None:
                    break
                after_id = done.last_id
        async with db.transaction() as session:
            left = await remaining(session, ring)
        if left == 0 or rekeyed_in_pass == 0:
            return left
