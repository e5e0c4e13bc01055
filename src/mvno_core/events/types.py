"""Every event type the service emits (or will, per the contract), so a typo in ``?types=`` is a 422
rather than a silently empty feed."""

from __future__ import annotations

EVENT_TYPES: frozenset[str] = frozenset(
    {
        # named by the HTTP contract (docs/api.md lists the ones emitted today)
        "mvno.created",
        "block.allocated",
        "number.reserved",
        "number.released",
        "line.activated",
        "line.suspended",
        "line.resumed",
        "line.cancelled",
        "hold.placed",
        "hold.lifted",
        "cancellation.completed",
        "takeover.completed",
        # also emitted
        "mvno.updated",
        "mvno.restricted",
        "mvno.reinstated",
        "api_key.created",
        "api_key.revoked",
        "reservation.released",
        "reservation.expired",
        "dispute.opened",
        "dispute.resolved",
        "reverification.requested",
        "reverification.satisfied",
        "line.account_updated",
        "pii.rekeyed",
        "subscriber.purged",
        "mvno.exiting",
        "mvno.terminated",
        "takeover.progressed",
        "subscriber.verification_failed",
        "subscriber.created",
        "subscriber.verified",
        "takeover.started",
        "webhook_endpoint.created",
        "webhook_endpoint.deleted",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.disabled",
        "line.end_user_registered",
        "recycling_platform.registered",
        "recycling_platform.deactivated",
        "recycling_batch.created",
        "recycling_batch.acknowledged",
        "recycling_batch.released",
    }
)
