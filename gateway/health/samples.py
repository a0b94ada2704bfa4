"""Recent latency samples of one deployment: percentiles on demand, and an EWMA.

Recording is an append to a bounded deque (the request path); percentiles are computed
only when someone asks (the status endpoint).
"""

from __future__ import annotations

import math
from collections import deque

KEEP = 512


class Samples:
    __slots__ = ("_values", "ewma")

    def __init__(self, keep: int = KEEP) -> None:
        self._values: deque[float] = deque(maxlen=keep)
        self.ewma: float | None = None

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: float, alpha: float) -> None:
        self._values.append(value)
        self.ewma = value if self.ewma is None else self.ewma + alpha * (value - self.ewma)

    def percentiles(self, *quantiles: float) -> dict[str, float | None]:
        """Nearest-rank percentiles, keyed "p50", "p90", ... (None without samples)."""
        ordered = sorted(self._values)
        out: dict[str, float | None] = {}
        for q in quantiles:
            key = f"p{q * 100:g}"
            if not ordered:
                out[key] = None
                continue
            rank = max(1, math.ceil(q * len(ordered)))
            out[key] = round(ordered[rank - 1], 2)
        return out
