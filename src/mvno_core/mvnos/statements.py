"""MVNO gates as statement pieces, for use cases that join them to their own statement."""

from __future__ import annotations

from mvno_core.kernel.statements import Piece
from mvno_core.mvnos.lifecycle import MvnoStatus


def takes_new_business(*, name: str, mvno_id: str) -> Piece:
    """Yields the MVNO's row only if it is ``active`` (``ensure_takes_new_business``), read ``FOR KEY
    SHARE``: the lock a reservation's or line's foreign key takes anyway. A restriction (``FOR UPDATE``)
    waits for running claims, and claims never wait for each other."""
    return Piece(
        name,
        "SELECT id FROM mvnos WHERE id = :gate_mvno_id AND status = :gate_mvno_status FOR KEY SHARE",
        {"gate_mvno_id": mvno_id, "gate_mvno_status": MvnoStatus.ACTIVE.value},
    )
