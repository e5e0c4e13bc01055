"""Re-encrypting names and ID numbers under the active PII key (``mvno-core pii rotate-key``).

Keys rotate by adding a new key to the key ring and making it ``active``: new rows use it at once, old
rows stay readable with theirs. This job then re-seals the old rows, one committed batch at a time
(``FOR UPDATE SKIP LOCKED``, so it runs beside the service and beside another run of itself), until no
row uses another key; after that the old keys can be retired. Interrupted, it resumes where it stopped:
a row is sealed with one key or the other, never half. The blind index has its own key and is not
touched (changing it would mean recomputing every index from the plaintext, a different job).
"""

from __future__ import annotations

from dataclasses import dataclass

from mvno_core.audit.journal import Subject, record
from mvno_core.kernel.context import RequestContext
from mvno_core.subscribers import pii, repository


@dataclass(slots=True)
class RotationBatch:
    rekeyed: int
    remaining: int


async def rotate_batch(ctx: RequestContext, ring: pii.KeyRing, *, batch: int) -> RotationBatch:
    """Re-seal up to ``batch`` subscribers not yet under the active key, in the caller's transaction,
    with one audit entry and event for the batch (no personal data in either)."""
    rows = await repository.sealed_with_other_keys(ctx.session, ring.active_key_id, batch)
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
    remaining = await repository.count_sealed_with_other_keys(ctx.session, ring.active_key_id)
    return RotationBatch(rekeyed=len(updates), remaining=remaining)
