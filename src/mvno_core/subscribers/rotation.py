"""Re-encrypting names and ID numbers under the active PII key (``mvno-core pii rotate-key``).

Keys rotate by adding a new key to the key ring and making it ``active``: new rows use it at once, old
rows stay readable with theirs. This job then re-seals the old rows, one committed batch at a time
(``FOR UPDATE SKIP LOCKED``, so it runs beside the service and beside another run of itself), until no
row uses another key; after that the old keys can be retired. Interrupted, it resumes where it stopped:
a row is sealed with one key or the other, never half. The blind index has its own key and is not
touched (changing it would mean recomputing every index from the plaintext, a different job).

Two tables hold data sealed with this ring: ``subscribers`` and ``line_end_users`` (the people using an
enterprise's cards). A batch takes subscribers first and fills up with end users, and ``remaining``
counts both, so "0 left" means no row of either still needs an old key.
"""

from __future__ import annotations

from dataclasses import dataclass

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.context import RequestContext
from mvno_core.subscribers import pii, repository
from mvno_core.subscribers.repository import SealedTable

# The associated data each table binds into its ciphertexts (``<prefix>:<row id>:<field>``).
_CONTEXT_PREFIX: dict[SealedTable, str] = {"subscribers": "subscriber", "line_end_users": "end_user"}


@dataclass(slots=True)
class RotationBatch:
    rekeyed: int
    remaining: int
    subscribers: int = 0
    end_users: int = 0
    remaining_subscribers: int = 0
    remaining_end_users: int = 0


async def _reseal(
    ctx: RequestContext, ring: pii.KeyRing, table: SealedTable, batch: int
) -> tuple[int, set[str]]:
    """Re-seal up to ``batch`` rows of ``table``; ``(how many, the keys they were under)``."""
    if batch <= 0:
        return 0, set()
    rows = await repository.sealed_with_other_keys(ctx.session, ring.active_key_id, batch, table=table)
    prefix = _CONTEXT_PREFIX[table]
    updates = []
    for row in rows:
        name_context, id_context = f"{prefix}:{row['id']}:name", f"{prefix}:{row['id']}:id_number"
        updates.append(
            (
                row["id"],
                ring.encrypt(
                    ring.decrypt(row["name_ciphertext"], context=name_context), context=name_context
                ),
                ring.encrypt(
                    ring.decrypt(row["id_number_ciphertext"], context=id_context), context=id_context
                ),
            )
        )
    if updates:
        await repository.reseal(ctx.session, updates, table=table)
    return len(updates), {pii.key_id_of(r["name_ciphertext"]) for r in rows}


async def rotate_batch(ctx: RequestContext, ring: pii.KeyRing, *, batch: int) -> RotationBatch:
    """Re-seal up to ``batch`` rows not yet under the active key (subscribers, then end users), in the
    caller's transaction, with one audit entry and event for the batch (no personal data in either)."""
    subscribers, keys = await _reseal(ctx, ring, "subscribers", batch)
    end_users, end_user_keys = await _reseal(ctx, ring, "line_end_users", batch - subscribers)
    if subscribers or end_users:
        await record(
            ctx,
            action="pii.rekeyed",
            subject=Subject("pii_key", ring.active_key_id),
            mvno_id=None,
            data={
                "subscribers": subscribers,
                "end_users": end_users,
                "from_keys": sorted(keys | end_user_keys),
            },
            event_type="pii.rekeyed",
        )
    left = {
        table: await repository.count_sealed_with_other_keys(ctx.session, ring.active_key_id, table=table)
        for table in repository.SEALED_TABLES
    }
    return RotationBatch(
        rekeyed=subscribers + end_users,
        remaining=sum(left.values()),
        subscribers=subscribers,
        end_users=end_users,
        remaining_subscribers=left["subscribers"],
        remaining_end_users=left["line_end_users"],
    )
