"""Links committed audit rows into the hash chain (Trillian-style sequencer).

Writers never touch the chain, so no row is locked by every write. One sequencer at a time (advisory
lock) takes committed, unlinked rows in id order and gives each ``chain_pos``, ``prev_hash`` and
``chain_hash = sha256(prev_hash : content_hash)``. A row whose transaction commits later is simply
linked by a later run: rows are pending until linked, never dropped.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.audit.hashing import GENESIS_HASH, chain_hash
from mvno_core.kernel.db import Database

SEQUENCER_LOCK = (2, 0)


async def link_pending(db: Database, batch: int) -> int:
    """Link what is committed now, one transaction per batch; stops at the first short batch, so a
    steady stream of new writes cannot keep it going."""
    total = 0
    while True:
        async with db.transaction() as session:
            linked = await link_batch(session, batch)
        total += linked
        if linked < batch:
            return total


async def link_batch(session: AsyncSession, batch: int) -> int:
    """Link up to ``batch`` rows in the caller's transaction; returns how many were linked."""
    got_lock = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
        {"a": SEQUENCER_LOCK[0], "b": SEQUENCER_LOCK[1]},
    )
    if not got_lock:
        return 0  # another sequencer is linking right now
    head = (
        await session.execute(
            text(
                "SELECT chain_pos, chain_hash FROM audit_entries WHERE chain_pos IS NOT NULL "
                "ORDER BY chain_pos DESC LIMIT 1"
            )
        )
    ).first()
    position, previous = (head.chain_pos, head.chain_hash) if head else (0, GENESIS_HASH)
    pending = (
        await session.execute(
            text(
                "SELECT id, content_hash FROM audit_entries WHERE chain_pos IS NULL ORDER BY id LIMIT :batch"
            ),
            {"batch": batch},
        )
    ).all()
    if not pending:
        return 0
    ids, positions, prev_hashes, hashes = [], [], [], []
    for row in pending:
        position += 1
        linked = chain_hash(previous, row.content_hash)
        ids.append(row.id)
        positions.append(position)
        prev_hashes.append(previous)
        hashes.append(linked)
        previous = linked
    await session.execute(
        text(
            "UPDATE audit_entries a SET chain_pos = v.pos, prev_hash = v.prev, chain_hash = v.hash "
            "FROM unnest(CAST(:ids AS text[]), CAST(:positions AS bigint[]), "
            "CAST(:prevs AS text[]), CAST(:hashes AS text[])) AS v(id, pos, prev, hash) "
            "WHERE a.id = v.id"
        ),
        {"ids": ids, "positions": positions, "prevs": prev_hashes, "hashes": hashes},
    )
    return len(pending)
