"""Real-name retention: identity is kept for the service period plus two years (MIIT Order 25), then
erased (PIPL: the shortest retention). Run by the sweeper in batches.

"Service period" ends when the subscriber's last line ends (or, for someone who never had a line, when
they registered). Purging erases the name and ID ciphertexts and the blind index; the masked copies, the
lines and every audit entry stay, so history remains readable without anyone's identity in it. The end
users an enterprise registered on its lines are erased in the same statement (ciphertexts gone, masks
kept); the subscriber's ``subscriber.purged`` entry says how many (``end_users_purged``).
"""

from __future__ import annotations

from datetime import timedelta

from mvno_core.audit.journal import Subject, record_many
from mvno_core.kernel.context import RequestContext
from mvno_core.subscribers import repository


async def purge_expired(ctx: RequestContext, *, batch: int = 500) -> int:
    """One batch; returns how many identities were erased (each audited, each an event)."""
    served_before = ctx.now - timedelta(days=ctx.settings.pii_retention_days)
    rows = await repository.purge_due(ctx.session, served_before=served_before, now=ctx.now, batch=batch)
    await record_many(
        ctx,
        [
            (
                "subscriber.purged",
                Subject("subscriber", row["id"]),
                row["mvno_id"],
                {
                    "id_type": row["id_type"],
                    "retention_days": ctx.settings.pii_retention_days,
                    "end_users_purged": row["end_users_purged"],
                },
            )
            for row in rows
        ],
        event_type="subscriber.purged",
    )
    return len(rows)
