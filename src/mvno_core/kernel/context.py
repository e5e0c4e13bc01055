"""The per-request context handed to services: one session (one transaction), the caller, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.kernel.config import Settings
from mvno_core.kernel.principal import Principal


@dataclass(slots=True)
class RequestContext:
    session: AsyncSession
    principal: Principal
    request_id: str | None
    # One timestamp per request, from the injectable clock: every row a request writes agrees on it.
    now: datetime
    settings: Settings
