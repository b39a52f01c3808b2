"""Small statistics helpers shared by the locustfile and the overhead runner (no locust)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

_GROWTH = 1.001  # bucket width: 0.1% relative error on every quantile, in constant memory
_LOG_GROWTH = math.log(_GROWTH)
_FLOOR_MS = 1e-4  # 0.1 us: anything faster shares the first bucket


class LatencyHistogram:
    """Log-bucketed latency histogram (ms). Locust rounds response times to whole
    milliseconds below 100 ms, too coarse for a sub-millisecond cycle at zero latency."""

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0

    def add(self, ms: float) -> None:
        b = int(math.log(max(ms, _FLOOR_MS) / _FLOOR_MS) / _LOG_GROWTH)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen > rank:
                return float(_FLOOR_MS * _GROWTH ** (b + 0.5))  # geometric bucket midpoint
        return None  # pragma: no cover - unreachable: counts sum to self.count


def median_ratio(pairs: Iterable[tuple[float | None, float | None]]) -> float | None:
    """Median of a/b over pairs measured side by side (skips pairs with a missing side)."""
    ratios = [a / b for a, b in pairs if a is not None and b is not None and b > 0]
    return statistics.median(ratios) if ratios else None
