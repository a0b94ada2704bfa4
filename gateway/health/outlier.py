"""Pure passive outlier detection: which attempts count, a sliding window, when to eject.

An attempt that ended `ok` is a success; one that failed for a reason that is the
vendor's fault (5xx, timeouts, connect errors, malformed or cut answers) is a failure;
everything else (429s, the caller's 4xx, skipped deployments, a rescue replay that
diverged) is neutral and left out. A success slower than `slow_call_seconds` (for a
stream: its time to first token) is also a slow call.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from gateway.health.config import OutlierConfig

_FAILURE_REASONS = frozenset(
    {"connect_error", "malformed_response", "stream_cut", "upstream_error", "status_408"}
)


class Verdict(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


def verdict(outcome: str, reason: str) -> Verdict:
    if outcome == "ok":
        return Verdict.SUCCESS
    if outcome == "skipped":
        return Verdict.NEUTRAL
    if reason in _FAILURE_REASONS or reason.startswith(("timeout_", "status_5")):
        return Verdict.FAILURE
    return Verdict.NEUTRAL


@dataclass(frozen=True, slots=True)
class Ejection:
    cause: str  # "failure_rate" | "slow_calls"
    why: str
    seconds: float
    success_rate: float


class OutlierWindow:
    """Calls of one deployment over the last `window_seconds`."""

    __slots__ = ("_calls", "failures", "slow")

    def __init__(self) -> None:
        self._calls: deque[tuple[float, bool, bool]] = deque()
        self.failures = 0
        self.slow = 0

    @property
    def calls(self) -> int:
        return len(self._calls)

    def add(self, now: float, failed: bool, slow: bool, window: float) -> None:
        self._calls.append((now, failed, slow))
        self.failures += failed
        self.slow += slow
        self.prune(now, window)

    def prune(self, now: float, window: float) -> None:
        horizon = now - window
        calls = self._calls
        while calls and calls[0][0] < horizon:
            _, failed, slow = calls.popleft()
            self.failures -= failed
            self.slow -= slow

    def clear(self) -> None:
        self._calls.clear()
        self.failures = 0
        self.slow = 0


def judge(window: OutlierWindow, config: OutlierConfig, ejections_in_a_row: int) -> Ejection | None:
    """An ejection when the window crosses a threshold, else None."""
    calls = window.calls
    if calls < config.min_calls:
        return None
    failure_rate = window.failures / calls
    seconds = min(config.max_eject_seconds, config.eject_seconds * 2**ejections_in_a_row)
    if failure_rate >= config.failure_rate:
        why = (
            f"failure rate {failure_rate:.0%} ({window.failures} of {calls} calls in "
            f"{config.window_seconds:g}s) reached {config.failure_rate:.0%}"
        )
        return Ejection("failure_rate", why, seconds, 1.0 - failure_rate)
    slow_rate = window.slow / calls
    if slow_rate >= config.slow_call_rate:
        why = (
            f"slow-call rate {slow_rate:.0%} ({window.slow} of {calls} calls over "
            f"{config.slow_call_seconds:g}s) reached {config.slow_call_rate:.0%}"
        )
        return Ejection("slow_calls", why, seconds, 1.0 - failure_rate)
    return None
