"""API key bodies and read models (never the secret, except once on creation)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from mvno_core.auth.models import ApiKey
from mvno_core.kernel.principal import Role


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    mvno_id: Annotated[str, StringConstraints(max_length=40)] | None = None
    # For role ``recycling_platform`` only: the (active) platform the key speaks for.
    recycling_platform_id: Annotated[str, StringConstraints(max_length=40)] | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = "unnamed"


class ApiKeyRead(BaseModel):
    id: str
    hint: str
    role: Role
    mvno_id: str | None
    recycling_platform_id: str | None = None
    name: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str  # the secret: shown in this response only, never again


def to_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        hint=key.hint,
        role=Role(key.role),
        mvno_id=key.mvno_id,
        recycling_platform_id=key.recycling_platform_id,
        name=key.name,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )
