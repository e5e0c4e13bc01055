"""Per-key rate limit: a token bucket checked before the transaction opens (a small limit on an app of
its own, so the shared app keeps the generous default)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mvno_core.kernel.config import Settings
from mvno_core.kernel.ratelimit import RateLimited, RateLimiter
from mvno_core.main import create_app
from tests import factories


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(update={"rate_limit_per_second": 0.5, "rate_limit_burst": 3}), run_sweeper=False
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await app.state.db.dispose()


async def test_past_the_burst_a_key_gets_429_with_retry_after(
    limited: httpx.AsyncClient, operator: dict[str, str], regulator: dict[str, str]
) -> None:
    for _ in range(3):
        assert (await limited.get("/v1/mvnos", headers=operator)).status_code == 200
    refused = await limited.get("/v1/mvnos", headers=operator)
    problem = factories.assert_problem(refused, 429, "rate_limited")
    assert "retry after" in problem["detail"]
    assert int(refused.headers["Retry-After"]) == 2  # one token back at 0.5/s
    # Writes are refused the same way, before anything is done.
    post = await limited.post("/v1/mvnos", json=factories.mvno_body(), headers=operator)
    factories.assert_problem(post, 429, "rate_limited")
    # Another key has its own bucket.
    assert (await limited.get("/v1/mvnos", headers=regulator)).status_code == 200


def test_the_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 2, clock=lambda: now[0])
    limiter.check("Bearer a")
    limiter.check("Bearer a")
    with pytest.raises(RateLimited) as refused:
        limiter.check("Bearer a")
    assert refused.value.retry_after == 1
    now[0] = 0.5  # one token back
    limiter.check("Bearer a")
    with pytest.raises(RateLimited):
        limiter.check("Bearer a")
    limiter.check("Bearer b")
