"""Latency summaries (milliseconds)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Latency:
    """Summary of a list of durations; ``p95`` is the nearest-rank percentile (an observed value)."""

    n: int
    median_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        if not seconds:
            raise ValueError("no samples")
        ordered = sorted(s * 1000 for s in seconds)
        rank = max(1, math.ceil(0.95 * len(ordered)))
        return cls(
            n=len(ordered),
            median_ms=statistics.median(ordered),
            p95_ms=ordered[rank - 1],
            min_ms=ordered[0],
            max_ms=ordered[-1],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            key: round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()
        }

    def __str__(self) -> str:
        return (
            f"median {self.median_ms:8.2f} ms   p95 {self.p95_ms:8.2f} ms   "
            f"min {self.min_ms:8.2f}   max {self.max_ms:8.2f}   (n={self.n})"
        )
