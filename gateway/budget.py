"""Retry budget: extra attempts stay a bounded share of requests over a sliding window.

Every attempt after a request's first spends from the budget. It allows
`ratio * requests + min_per_second * window` extra attempts per window, so an outage
can never multiply the load the gateway sends to vendors (Envoy / Finagle style).
"""

from __future__ import annotations

from collections import deque


class RetryBudget:
    def __init__(self, ratio: float, min_per_second: float, window: float) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = window
        # One bucket per second: [second, requests, retries]
        self._buckets: deque[list[int]] = deque()
        self._requests = 0
        self._retries = 0

    def _bucket(self, now: float) -> list[int]:
        second = int(now)
        horizon = second - int(self.window)
        while self._buckets and self._buckets[0][0] <= horizon:
            _, requests, retries = self._buckets.popleft()
            self._requests -= requests
            self._retries -= retries
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def record_request(self, now: float) -> None:
        self._bucket(now)[1] += 1
        self._requests += 1

    def try_spend(self, now: float) -> bool:
        """Take one retry from the budget; False when it is used up."""
        bucket = self._bucket(now)
        allowed = self.ratio * self._requests + self.min_per_second * self.window
        if self._retries + 1 > allowed:
            return False
        bucket[2] += 1
        self._retries += 1
        return True

    def snapshot(self, now: float) -> tuple[int, int]:
        """(requests, retries) in the current window."""
        self._bucket(now)
        return self._requests, self._retries
