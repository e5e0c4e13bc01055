"""Rate limit per API key: a token bucket in this process, checked before the transaction opens.

Each key gets ``rate_limit_burst`` tokens, refilled at ``rate_limit_per_second``; a request takes one.
An empty bucket answers 429 ``rate_limited`` with ``Retry-After`` (whole seconds until a token is back)
without touching the database. The bucket is keyed by a hash of the presented credential, so the check
needs no look-up and a flood of bad keys is limited too (each counts as its own key).

The buckets live in the process: with N server processes a key may get up to N times the limit. That
is deliberate: a shared bucket in PostgreSQL would put a write on every request's path (a hot row per
key), which is what style.md forbids; the limit exists to stop a runaway client, not to bill.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from mvno_core.kernel.problems import DomainError

# Buckets kept at most; the least recently used is dropped first (a dropped bucket restarts full,
# which only ever errs towards letting a request through).
MAX_BUCKETS = 100_000


class RateLimited(DomainError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Rate limit exceeded for this API key; retry after {retry_after} s.")
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, per_second: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = float(burst)
        self.clock = clock
        # credential hash -> (tokens, when they were counted)
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    def check(self, authorization: str | None) -> None:
        """Take a token for this credential or raise ``RateLimited``. No await: nothing can interleave."""
        key = hashlib.blake2b((authorization or "").encode(), digest_size=16).digest()
        now = self.clock()
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise RateLimited(max(1, math.ceil((1.0 - tokens) / self.per_second)))
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
