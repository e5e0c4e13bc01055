"""API keys: authentication and management (create, list, revoke)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from mvno_core.audit.journal import Subject, record, record_many
from mvno_core.auth import repository
from mvno_core.auth.keys import generate_secret, hash_secret, hint_of
from mvno_core.auth.models import ApiKey
from mvno_core.auth.schemas import ApiKeyCreated, ApiKeyRead, to_read
from mvno_core.kernel.context import RequestContext
from mvno_core.kernel.ids import new_id
from mvno_core.kernel.lean import LeanLookup
from mvno_core.kernel.principal import Principal, Role
from mvno_core.kernel.problems import NotFound, Unauthorized, ValidationFailed


class PrincipalCache:
    """Recently authenticated keys, kept ``ttl`` seconds, so a hot request spends no round trip on
    authentication. A revocation is seen by every process within ``ttl`` (the setting
    ``auth_cache_seconds``, 1 s by default); in the revoking process at once. Unknown keys are never
    cached, so a guessed key always costs a lookup and a new key works immediately."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, secret_hash: str) -> Principal | None:
        entry = self._entries.get(secret_hash)
        if entry is None:
            return None
        principal, expires = entry
        if time.monotonic() >= expires:
            del self._entries[secret_hash]
            return None
        return principal

    def put(self, secret_hash: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()  # bounded memory; the next requests simply look their keys up again
        self._entries[secret_hash] = (principal, time.monotonic() + self.ttl)

    def forget(self, key_id: str) -> None:
        for secret_hash, (principal, _) in list(self._entries.items()):
            if principal.key_id == key_id:
                self._entries.pop(secret_hash, None)


# One per process: the revoking request evicts from the same cache that serves authentication.
principals = PrincipalCache(ttl=1.0)


async def authenticate_in_lane(authorization: str | None, lookup: LeanLookup) -> Principal | None:
    """``authenticate`` for the kernel's lean lane: the cache, else one lookup over the lane's
    connection; None for anything else (the full stack then answers, 401 included)."""
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    secret_hash = hash_secret(secret.strip())
    cached = principals.get(secret_hash)
    if cached is not None:
        return cached
    row = await lookup(repository.PRINCIPAL_SQL, {"h": secret_hash})
    if row is None:
        return None
    principal = _principal_of(row)
    principals.put(secret_hash, principal)
    return principal


def _principal_of(row: Mapping[str, Any] | RowMapping) -> Principal:
    return Principal(
        key_id=row["id"],
        role=Role(row["role"]),
        mvno_id=row["mvno_id"],
        recycling_platform_id=row["recycling_platform_id"],
    )


async def authenticate(session: AsyncSession, authorization: str | None) -> Principal:
    """Resolve ``Authorization: Bearer <key>`` to a principal; 401 for missing/invalid/revoked keys."""
    if not authorization:
        raise Unauthorized("Send Authorization: Bearer <api key>.")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Send Authorization: Bearer <api key>.")
    secret_hash = hash_secret(secret.strip())
    cached = principals.get(secret_hash)
    if cached is not None:
        return cached
    row = await repository.principal_row(session, secret_hash)
    if row is None:
        raise Unauthorized("The API key is unknown or revoked.")
    principal = _principal_of(row)
    principals.put(secret_hash, principal)
    return principal


async def principal_by_id(session: AsyncSession, key_id: str) -> Principal | None:
    """The principal of a live key, by id (the console's session names the key, never its secret);
    None once the key is revoked or gone, so a revocation ends console sessions too."""
    key = await repository.get(session, key_id)
    if key is None or key.revoked_at is not None:
        return None
    return Principal(
        key_id=key.id,
        role=Role(key.role),
        mvno_id=key.mvno_id,
        recycling_platform_id=key.recycling_platform_id,
    )


async def create_key(
    ctx: RequestContext,
    *,
    role: Role,
    mvno_id: str | None,
    name: str,
    recycling_platform_id: str | None = None,
) -> ApiKeyCreated:
    """Create a key; the secret is in this answer only (stored hashed, never replayed). A partner key
    names its MVNO; a recycling platform's key names its platform, which must be active."""
    if role is Role.PARTNER and mvno_id is None:
        raise ValidationFailed("A partner key needs mvno_id.", loc=("body", "mvno_id"))
    if role is not Role.PARTNER and mvno_id is not None:
        raise ValidationFailed("Only partner keys are bound to an MVNO.", loc=("body", "mvno_id"))
    platform_loc = ("body", "recycling_platform_id")
    if role is Role.RECYCLING_PLATFORM and recycling_platform_id is None:
        raise ValidationFailed("A recycling platform's key needs recycling_platform_id.", loc=platform_loc)
    if role is not Role.RECYCLING_PLATFORM and recycling_platform_id is not None:
        raise ValidationFailed(
            "Only recycling_platform keys are bound to a recycling platform.", loc=platform_loc
        )
    if mvno_id is not None and not await repository.mvno_exists(ctx.session, mvno_id):
        raise ValidationFailed(f"MVNO {mvno_id} does not exist.", loc=("body", "mvno_id"))
    if recycling_platform_id is not None:
        active = await repository.platform_is_active(ctx.session, recycling_platform_id)
        if active is None:
            raise ValidationFailed(
                f"Recycling platform {recycling_platform_id} does not exist.", loc=platform_loc
            )
        if not active:
            raise ValidationFailed(
                f"Recycling platform {recycling_platform_id} is inactive.", loc=platform_loc
            )
    secret = generate_secret()
    key = ApiKey(
        id=new_id("key"),
        secret_hash=hash_secret(secret),
        hint=hint_of(secret),
        role=role.value,
        mvno_id=mvno_id,
        recycling_platform_id=recycling_platform_id,
        name=name,
        created_at=ctx.now,
    )
    await repository.insert(ctx.session, key)
    await record(
        ctx,
        action="api_key.created",
        subject=Subject("api_key", key.id),
        mvno_id=mvno_id,
        data={
            "role": role.value,
            "name": name,
            **({"recycling_platform_id": recycling_platform_id} if recycling_platform_id else {}),
        },
        event_type="api_key.created",
    )
    return ApiKeyCreated(**to_read(key).model_dump(), key=secret)


async def list_keys(
    ctx: RequestContext, *, after_id: str | None = None, limit: int | None = None
) -> list[ApiKeyRead]:
    return [to_read(key) for key in await repository.list_page(ctx.session, after_id=after_id, limit=limit)]


async def get_key(ctx: RequestContext, key_id: str) -> ApiKeyRead:
    key = await repository.get(ctx.session, key_id)
    if key is None:
        raise NotFound.of("API key", key_id)
    return to_read(key)


async def revoke_key(ctx: RequestContext, key_id: str) -> ApiKeyRead:
    """Revoke a key (idempotent: revoking a revoked key changes nothing and records nothing). This
    process stops trusting it at once; others within ``auth_cache_seconds``."""
    key = await repository.get(ctx.session, key_id, lock=True)
    if key is None:
        raise NotFound.of("API key", key_id)
    if key.revoked_at is None:
        await repository.mark_revoked(ctx.session, key, ctx.now)
        principals.forget(key.id)
        await record(
            ctx,
            action="api_key.revoked",
            subject=Subject("api_key", key.id),
            mvno_id=key.mvno_id,
            data={"role": key.role},
            event_type="api_key.revoked",
        )
    return to_read(key)


async def revoke_platform_keys(ctx: RequestContext, platform_id: str) -> int:
    """Revoke every live key of a recycling platform (its deactivation): each journalled as a revocation
    is, each forgotten by this process's cache at once (others within ``auth_cache_seconds``)."""
    rows = await repository.revoke_platform_keys(ctx.session, platform_id, ctx.now)
    for row in rows:
        principals.forget(row["id"])
    await record_many(
        ctx,
        [
            (
                "api_key.revoked",
                Subject("api_key", row["id"]),
                None,
                {"role": Role.RECYCLING_PLATFORM.value, "recycling_platform_id": platform_id},
            )
            for row in rows
        ],
        event_type="api_key.revoked",
    )
    return len(rows)


async def mvno_id_of(ctx: RequestContext, id_or_code: str | None) -> str | None:
    """An MVNO's id from its id or its code (the CLI takes either); 404 if neither."""
    if id_or_code is None:
        return None
    found = await repository.mvno_id_by_id_or_code(ctx.session, id_or_code)
    if found is None:
        raise NotFound.of("MVNO", id_or_code)
    return found
