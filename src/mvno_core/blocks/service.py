"""Block allocation and reads."""

from __future__ import annotations

from mvno_core.audit.journal import Subject, record
from mvno_core.blocks import repository
from mvno_core.blocks.errors import BlockUnavailable, HostMismatch, RegionNotLicensed
from mvno_core.blocks.repository import BlockRow
from mvno_core.blocks.schemas import EMPTY_COUNTS, BlockCreate, BlockRead, to_read
from mvno_core.kernel import statements
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.problems import NotFound
from mvno_core.mvnos import service as mvnos
from mvno_core.mvnos.lifecycle import MvnoStatus, ensure_takes_new_business
from mvno_core.numbers import repository as numbers
from mvno_core.numbers import statements as number_moves
from mvno_core.reference.data import BLOCK_SIZE, SEGMENTS


async def allocate(ctx: RequestContext, mvno_id: str, data: BlockCreate) -> BlockRead:
    """Allocate an H-code block to an MVNO and create its 10,000 numbers ``available``.

    Checks, in order: the MVNO is visible (404), the caller is the operator (403), the MVNO is active
    (``mvno_not_active``), the segment's host is one of its hosts (``host_mismatch``), the province is
    licensed (``region_not_licensed``), the H-code is in the segment and free (``block_unavailable``).
    Takes a share lock on the MVNO row (a concurrent restriction waits) and the segment's advisory lock.
    Writes the block, its numbers (one statement), the audit entry and ``block.allocated``.
    """
    mvno = await mvnos.get_visible(ctx, mvno_id, lock="share")
    ctx.principal.ensure_operator()
    ensure_takes_new_business(MvnoStatus(mvno.status))
    segment = SEGMENTS[data.segment]
    if segment.host.value not in mvno.hosts:
        raise HostMismatch(
            f"Segment {segment.code} belongs to {segment.host}; the MVNO's hosts are {mvno.hosts}."
        )
    if data.province not in mvno.licensed_provinces:
        raise RegionNotLicensed(f"Province {data.province} is not in the MVNO's licensed area.")
    if data.prefix is not None and not data.prefix.startswith(segment.code):
        raise BlockUnavailable(f"H-code {data.prefix} is not in segment {segment.code}.")

    await repository.lock_segment(ctx.session, segment)
    prefix = data.prefix or await repository.lowest_free_prefix(ctx.session, segment)
    if prefix is None:
        raise BlockUnavailable(f"Segment {segment.code} has no free H-code left.")
    block = BlockRow(
        id=new_id("blk"),
        prefix=prefix,
        segment=segment.code,
        host=segment.host.value,
        province=data.province,
        city=data.city,
        mvno_id=mvno.id,
        status="active",
        size=BLOCK_SIZE,
        allocated_at=ctx.now,
    )
    if not await repository.insert_block(ctx.session, block):
        raise BlockUnavailable(f"H-code {prefix} is already allocated.")
    await statements.run(
        ctx.session,
        [number_moves.create_block_numbers(name="created_numbers", prefix=prefix)],
        "SELECT 1",
    )
    await record(
        ctx,
        action="block.allocated",
        subject=Subject("block", block.id),
        mvno_id=mvno.id,
        data={
            "prefix": prefix,
            "segment": segment.code,
            "host": segment.host.value,
            "province": data.province,
            "city": data.city,
            "size": BLOCK_SIZE,
        },
        event_type="block.allocated",
    )
    return to_read(block, {**EMPTY_COUNTS, "available": BLOCK_SIZE})


async def get_visible(ctx: RequestContext, block_id: str) -> BlockRead:
    block = await repository.get(ctx.session, block_id)
    if block is None:
        raise NotFound.of("Block", block_id)
    ctx.principal.ensure_can_see(block.mvno_id, "Block", block_id)
    counts = await numbers.counts_by_block(ctx.session, [block.prefix], ctx.now)
    return to_read(block, counts.get(block.prefix, EMPTY_COUNTS))


async def list_visible(
    ctx: RequestContext,
    *,
    mvno_id: str | None,
    segment: str | None,
    province: str | None,
    after_prefix: str | None,
    limit: int,
) -> list[BlockRead]:
    visible, mvno_id = ctx.principal.narrow(mvno_id)
    if not visible:
        return []
    blocks = await repository.list_page(
        ctx.session,
        mvno_id=mvno_id,
        segment=segment,
        province=province,
        after_prefix=after_prefix,
        limit=limit,
    )
    counts = await numbers.counts_by_block(ctx.session, [b.prefix for b in blocks], ctx.now)
    return [to_read(b, counts.get(b.prefix, EMPTY_COUNTS)) for b in blocks]
