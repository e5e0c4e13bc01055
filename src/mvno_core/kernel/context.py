"""The per-request context handed to services: one session (one transaction), the caller, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel import idempotency
from mvno_core.kernel.config import Settings
from mvno_core.kernel.idempotency import IdempotencyClaim
from mvno_core.kernel.principal import Principal
from mvno_core.kernel.replies import Reply
from mvno_core.kernel.statements import Piece


@dataclass(slots=True)
class RequestContext:
    session: AsyncSession
    principal: Principal
    request_id: str | None
    # One timestamp per request, from the injectable clock: every row a request writes agrees on it.
    now: datetime
    settings: Settings
    # The request's Idempotency-Key claim, if it sent one. A use case that writes the record itself, in
    # its own statement (``idempotency.record_piece``), sets ``idempotency_recorded`` so the boundary
    # does not write it again.
    idempotency: IdempotencyClaim | None = None
    idempotency_recorded: bool = False
    method: str = "GET"
    path: str = ""

    def idempotency_pieces(self, reply: Reply, *, only_if: str) -> list[Piece]:
        """The Idempotency-Key record of ``reply`` as a piece of the use case's own statement (none
        without a key), written only if ``only_if`` holds, i.e. only with the effect."""
        if self.idempotency is None:
            return []
        self.idempotency_recorded = True
        return [
            idempotency.record_piece(
                self.idempotency,
                reply,
                method=self.method,
                path=self.path,
                now=self.now,
                ttl=timedelta(hours=self.settings.idempotency_ttl_hours),
                only_if=only_if,
            )
        ]
