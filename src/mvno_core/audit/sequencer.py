"""Links committed audit rows into the hash chain (Trillian-style sequencer).

Writers never touch the chain, so no row is locked by every write. One sequencer at a time (advisory
lock) takes committed, unlinked rows in id order and gives each ``chain_pos``, ``prev_hash`` and
``chain_hash = sha256(prev_hash : content_hash)``. A row whose transaction commits later is simply
linked by a later run: rows are pending until linked, never dropped.

Before linking, the chain must still reach the latest signed checkpoint kept outside the database
(``audit/checkpoints.py``): if rows were deleted, the sequencer refuses to link new ones on top (which
would re-use the deleted positions and hide the gap), leaves them pending and logs the alarm; verify
reports the gap. After linking, it signs a new checkpoint when asked to.

Linking runs as the service's own role, which may UPDATE only the three linking columns of
``audit_entries`` (column privileges), while the owner's trigger refuses to change them once set.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.audit.checkpoints import Anchor, AuditKeyring, Checkpoint
from mvno_core.audit.hashing import GENESIS_HASH, chain_hash
from mvno_core.kernel.clock import Clock
from mvno_core.kernel.db import Database

log = logging.getLogger(__name__)

SEQUENCER_LOCK = (2, 0)


class ChainBelowCheckpoint(Exception):
    """The chain no longer reaches the latest signed checkpoint: rows were removed or re-linked."""


async def link_pending(
    db: Database,
    batch: int,
    *,
    keyring: AuditKeyring | None = None,
    clock: Clock | None = None,
) -> int:
    """Link what is committed now, one transaction per batch; stops at the first short batch, so a
    steady stream of new writes cannot keep it going. With a keyring (and clock), then sign and keep a
    checkpoint of the new head."""
    try:
        anchor = latest.anchor() if keyring is not None and (latest := keyring.latest()) else None
    except ValueError:
        log.error("audit checkpoint file is unreadable or not signed by our key; not linking")
        return 0
    total = 0
    try:
        while True:
            async with db.transaction() as session:
                linked = await link_batch(session, batch, anchor=anchor)
            total += linked
            if linked < batch:
                break
    except ChainBelowCheckpoint as alarm:
        log.error(
            "audit chain does not match its latest signed checkpoint; not linking", extra={"why": str(alarm)}
        )
        return total
    if keyring is not None and clock is not None:
        await checkpoint(db, keyring, clock)
    return total


async def chain_head(session: AsyncSession) -> Anchor:
    head = (
        await session.execute(
            text(
                "SELECT chain_pos, chain_hash FROM audit_entries WHERE chain_pos IS NOT NULL "
                "ORDER BY chain_pos DESC LIMIT 1"
            )
        )
    ).first()
    return Anchor(head.chain_pos, head.chain_hash) if head else Anchor(0, GENESIS_HASH)


async def hash_at(session: AsyncSession, position: int) -> str | None:
    found = await session.scalar(
        text("SELECT chain_hash FROM audit_entries WHERE chain_pos = :pos"), {"pos": position}
    )
    return None if found is None else str(found)


async def checkpoint(db: Database, keyring: AuditKeyring, clock: Clock) -> Checkpoint | None:
    """Sign the current head, store it in ``audit_checkpoints`` and keep it outside the database.
    Nothing new since the latest checkpoint: nothing to sign."""
    latest = keyring.latest()
    async with db.transaction() as session:
        head = await chain_head(session)
        if head.length == 0 or (latest is not None and head.length <= latest.length):
            return None
        signed = keyring.sign(head.length, head.head_hash, clock.now())
        await session.execute(
            text(
                "INSERT INTO audit_checkpoints (length, head_hash, signed_at, key_id, signature) "
                "VALUES (:length, :head_hash, :signed_at, :key_id, :signature) ON CONFLICT DO NOTHING"
            ),
            {
                "length": signed.length,
                "head_hash": signed.head_hash,
                "signed_at": signed.signed_at,
                "key_id": signed.key_id,
                "signature": signed.signature,
            },
        )
    # Only after the commit: a file claiming a head the database never committed would be a false alarm.
    keyring.keep_latest(signed)
    return signed


async def link_batch(session: AsyncSession, batch: int, *, anchor: Anchor | None = None) -> int:
    """Link up to ``batch`` rows in the caller's transaction; returns how many were linked. Raises
    ``ChainBelowCheckpoint`` if the chain no longer reaches ``anchor``."""
    got_lock = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:a, :b)"),
        {"a": SEQUENCER_LOCK[0], "b": SEQUENCER_LOCK[1]},
    )
    if not got_lock:
        return 0  # another sequencer is linking right now
    head = await chain_head(session)
    if anchor is not None:
        if head.length < anchor.length:
            raise ChainBelowCheckpoint(f"chain length {head.length} < checkpoint length {anchor.length}")
        if await hash_at(session, anchor.length) != anchor.head_hash:
            raise ChainBelowCheckpoint(f"position {anchor.length} no longer has the checkpoint's hash")
    position, previous = head.length, head.head_hash
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
