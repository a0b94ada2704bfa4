"""Pure classification of a failed attempt: what the retry layer does next.

outcome                                  action          breaker failure
connect error / reset before headers     FAILOVER        yes
timeout (connect, first token, idle)     FAILOVER        yes
5xx, 529 overloaded, 408                 FAILOVER        yes
malformed or truncated body, cut stream  FAILOVER        yes
rescue replay diverged                   FAILOVER        no
429 asking a short wait                  WAIT_SAME       no  (others skip it for the wait)
429 asking a long wait                   FAILOVER        no  (deployment cools down)
429 with no header                       FAILOVER        no  (short jittered cool-down)
400 context length exceeded              LARGER_CONTEXT  no
400 content policy                       RETURN / FAILOVER (route setting), no
other 4xx                                RETURN          no
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from gateway.errors import (
    ReplayDiverged,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.ratelimit import requested_wait


class Action(Enum):
    FAILOVER = "failover"  # next candidate now; the same one again only after backoff
    WAIT_SAME = "wait_same"  # wait `wait` seconds, then the same deployment
    LARGER_CONTEXT = "larger_context"  # only candidates with a larger context window
    RETURN = "return"  # the vendor's answer goes back to the client


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str  # bounded label for bodies, headers and metrics
    breaker_failure: bool
    wait: float = 0.0
    cooldown: float = 0.0  # seconds the deployment is skipped by other requests


@dataclass(frozen=True, slots=True)
class Policy:
    rate_limit_max_wait: float
    rate_limit_cooldown: float
    content_policy_failover: bool


_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "maximum context",
    "prompt is too long",
    "too many tokens",
)
_POLICY_MARKERS = (
    "content_policy_violation",
    "content_filter",
    "content management policy",
    "safety system",
)


def _mentions(error: UpstreamError, markers: tuple[str, ...]) -> bool:
    text = f"{error.vendor_code or ''} {error.message}".lower()
    return any(m in text for m in markers)


def classify(error: UpstreamError, policy: Policy, rng: random.Random, now: datetime) -> Verdict:
    if isinstance(error, UpstreamTimeout):
        return Verdict(Action.FAILOVER, f"timeout_{error.phase}", True)
    if isinstance(error, ReplayDiverged):
        return Verdict(Action.FAILOVER, error.reason, False)
    if not isinstance(error, UpstreamStatusError):
        return Verdict(Action.FAILOVER, error.reason, True)
    status = error.status or 0
    if status == 429:
        return _rate_limited(error, policy, rng, now)
    if status >= 500 or status == 408:
        return Verdict(Action.FAILOVER, f"status_{status}", True)
    if _mentions(error, _CONTEXT_MARKERS):
        return Verdict(Action.LARGER_CONTEXT, "context_length_exceeded", False)
    if _mentions(error, _POLICY_MARKERS):
        action = Action.FAILOVER if policy.content_policy_failover else Action.RETURN
        return Verdict(action, "content_policy", False)
    return Verdict(Action.RETURN, f"status_{status}", False)


def _rate_limited(
    error: UpstreamError, policy: Policy, rng: random.Random, now: datetime
) -> Verdict:
    wait = requested_wait(error.headers, now)
    if wait is None:
        # No hint: let others skip it briefly (full jitter) so a storm is never a tight loop.
        cooldown = policy.rate_limit_cooldown * (0.5 + rng.random())
        return Verdict(Action.FAILOVER, "rate_limited", False, wait=cooldown, cooldown=cooldown)
    if wait <= policy.rate_limit_max_wait:
        # The vendor's limit is shared by every request: the others skip it for the wait
        # instead of each finding the 429 and spending the retry budget to fail over.
        return Verdict(Action.WAIT_SAME, "rate_limited", False, wait=wait, cooldown=wait)
    return Verdict(Action.FAILOVER, "rate_limited", False, wait=wait, cooldown=wait)


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff for the `attempt`-th retry of one deployment (1-based)."""
    return rng.uniform(0.0, min(cap, base * (2 ** (attempt - 1))))
