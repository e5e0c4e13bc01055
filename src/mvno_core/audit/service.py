"""Reading and verifying the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.audit import repository, sequencer
from mvno_core.audit.checkpoints import Anchor, AuditKeyring
from mvno_core.audit.hashing import GENESIS_HASH, chain_hash, content_hash
from mvno_core.kernel.clock import Clock
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.db import Database


async def list_entries(
    ctx: RequestContext,
    *,
    subject_kind: str | None,
    subject_id: str | None,
    after_id: str | None,
    limit: int,
    newest_first: bool = False,
) -> list[RowMapping]:
    """Oldest first from ``after_id`` (the API's pages); ``newest_first``: the latest ``limit`` (the
    console's view of what just happened)."""
    return await repository.list_page(
        ctx.session,
        mvno_id=ctx.principal.mvno_scope(),
        subject_kind=subject_kind,
        subject_id=subject_id,
        after_id=after_id,
        limit=limit,
        newest_first=newest_first,
    )


async def entries_for_subjects(
    ctx: RequestContext, subjects: list[tuple[str, str]], *, limit: int
) -> list[RowMapping]:
    """One history across related subjects (a number, its lines, reservations, disputes,
    cancellations), newest first, within the caller's scope."""
    return await repository.for_subjects(
        ctx.session, mvno_id=ctx.principal.mvno_scope(), subjects=subjects, limit=limit
    )


def recomputed_content_hash(row: RowMapping) -> str:
    return content_hash(
        entry_id=row["id"],
        recorded_at=row["recorded_at"],
        actor_key_id=row["actor_key_id"],
        actor_role=row["actor_role"],
        actor_mvno_id=row["actor_mvno_id"],
        action=row["action"],
        subject_kind=row["subject_kind"],
        subject_id=row["subject_id"],
        mvno_id=row["mvno_id"],
        request_id=row["request_id"],
        data=row["data"],
    )


@dataclass(slots=True)
class Verification:
    ok: bool
    checked: int  # rows walked by this verification (incremental: only those new since the last)
    first_broken_seq: int | None
    first_missing_seq: int | None
    pending: int
    length: int  # the chain's length now
    head_hash: str
    full: bool
    anchors_checked: list[Anchor] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)


# Held (transaction-scoped) by a full verification, so instances never re-walk the chain together.
FULL_VERIFY_LOCK = (2, 2)


async def verify_anchored(
    session: AsyncSession,
    db: Database,
    keyring: AuditKeyring,
    clock: Clock,
    *,
    full: bool,
    kept: Anchor | None,
    batch: int,
) -> Verification | None:
    """Link what is pending (and sign a checkpoint), then verify: from the last state proven intact
    unless ``full``, against the latest checkpoint kept outside the database and ``kept`` (one the
    caller holds). None if ``full`` and a full verification is already running elsewhere."""
    # The request's own transaction waits while linking runs on other connections, and a full walk
    # can take minutes: the idle-in-transaction timeout must not end it meanwhile.
    await repository.keep_transaction_open(session)
    if full and not await repository.try_lock(session, FULL_VERIFY_LOCK):
        return None
    await sequencer.link_pending(db, batch, keyring=keyring, clock=clock)
    alarms: list[str] = []
    try:
        latest = keyring.latest()
    except ValueError:
        latest = None
        alarms.append(
            "The latest checkpoint kept outside the database is unreadable or not signed by our key."
        )
    since = None if full else keyring.verified()
    anchors = [a for a in (latest.anchor() if latest else None, since, kept) if a is not None]
    result = await verify(session, since=since, anchors=anchors)
    result.alarms = alarms
    result.ok = result.ok and not alarms
    if result.ok and result.length > 0:
        keyring.keep_verified(Anchor(result.length, result.head_hash))
    return result


async def verify(
    session: AsyncSession,
    *,
    since: Anchor | None,
    anchors: list[Anchor],
    page: int = 5000,
) -> Verification:
    """Check the chain, from ``since`` (a state an earlier verification proved intact; None: from the
    start) to its head: every row's content must hash to its ``content_hash`` and every link must
    follow from the previous one. Then check it against ``anchors`` (signed checkpoints kept outside the
    table, or one the caller kept): a chain shorter than an anchor is missing rows from its end on
    (``first_missing_seq``); a row at an anchor's length with another hash means the chain was
    rewritten there or before (``first_broken_seq``)."""
    head = await sequencer.chain_head(session)
    start = Anchor(0, GENESIS_HASH)
    if since is not None and 0 < since.length <= head.length and await _intact_row(session, since):
        start = since
    full = start.length == 0
    checked, first_broken = await _walk(session, start, page)
    first_missing: int | None = None
    for anchor in anchors:
        if anchor.length > head.length:
            first_missing = min(first_missing or head.length + 1, head.length + 1)
        elif (first_broken is None or anchor.length < first_broken) and await sequencer.hash_at(
            session, anchor.length
        ) != anchor.head_hash:
            first_broken = anchor.length
    rewritten = since is not None and start.length == 0 and 0 < since.length <= head.length
    if rewritten and first_broken is None and since is not None:
        # The state an earlier verification proved intact no longer holds, yet the walk found nothing:
        # the chain was re-linked consistently. That position is the earliest we can show is wrong.
        first_broken = since.length
    return Verification(
        ok=first_broken is None and first_missing is None,
        checked=checked,
        first_broken_seq=first_broken,
        first_missing_seq=first_missing,
        pending=await _pending(session),
        length=head.length,
        head_hash=head.head_hash,
        full=full,
        anchors_checked=list(anchors),
    )


async def _intact_row(session: AsyncSession, anchor: Anchor) -> bool:
    """The row at ``anchor`` still has its content and its chain hash (the incremental walk's base)."""
    row = await repository.entry_at(session, anchor.length)
    if row is None:
        return False
    return bool(
        row["chain_hash"] == anchor.head_hash
        and recomputed_content_hash(row) == row["content_hash"]
        and chain_hash(row["prev_hash"], row["content_hash"]) == row["chain_hash"]
    )


async def _walk(session: AsyncSession, start: Anchor, page: int) -> tuple[int, int | None]:
    """Walk from ``start`` to the head: (rows checked, first broken position or None)."""
    previous = start.head_hash
    expected_pos = start.length + 1
    checked = 0
    while True:
        rows = await repository.entries_from(session, expected_pos, page)
        for row in rows:
            intact = (
                row["chain_pos"] == expected_pos
                and row["prev_hash"] == previous
                and recomputed_content_hash(row) == row["content_hash"]
                and chain_hash(previous, row["content_hash"]) == row["chain_hash"]
            )
            if not intact:
                return checked, expected_pos
            previous = row["chain_hash"]
            expected_pos += 1
            checked += 1
        if len(rows) < page:
            return checked, None


async def _pending(session: AsyncSession) -> int:
    return await repository.pending_count(session)
