"""Classification of a failed attempt: one row per outcome in classify.py's table."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.classify import Action, Policy, Verdict, backoff, classify
from gateway.errors import (
    ReplayDiverged,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamStreamCut,
    UpstreamTimeout,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
POLICY = Policy(rate_limit_max_wait=3.0, rate_limit_cooldown=1.0, content_policy_failover=False)
FAILOVER_POLICY = Policy(3.0, 1.0, content_policy_failover=True)


def status(code: int, message: str = "error", headers: dict[str, str] | None = None,
           vendor_code: str | None = None) -> UpstreamStatusError:  # fmt: skip
    return UpstreamStatusError(message, status=code, headers=headers, vendor_code=vendor_code)


def rfc3339(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


F, W, L, R = Action.FAILOVER, Action.WAIT_SAME, Action.LARGER_CONTEXT, Action.RETURN

# (id, error, action, reason, breaker_failure, wait, cooldown)
TABLE: list[tuple[str, UpstreamError, Action, str, bool, float, float]] = [
    # connect error / reset before headers
    ("connect refused", UpstreamConnectError("refused"), F, "connect_error", True, 0, 0),
    # timeouts
    ("connect timeout", UpstreamTimeout("t", phase="connect"), F, "timeout_connect", True, 0, 0),
    ("first token timeout", UpstreamTimeout("t", phase="first_token"), F,
     "timeout_first_token", True, 0, 0),
    ("idle timeout", UpstreamTimeout("t", phase="idle"), F, "timeout_idle", True, 0, 0),
    # 5xx, 529, 408
    ("500", status(500), F, "status_500", True, 0, 0),
    ("502", status(502), F, "status_502", True, 0, 0),
    ("503", status(503), F, "status_503", True, 0, 0),
    ("504", status(504), F, "status_504", True, 0, 0),
    ("529 overloaded", status(529, "Overloaded", vendor_code="overloaded_error"), F,
     "status_529", True, 0, 0),
    ("408", status(408), F, "status_408", True, 0, 0),
    ("5xx mentioning context is still a vendor failure", status(500, "maximum context"), F,
     "status_500", True, 0, 0),
    # malformed or truncated body, cut stream
    ("malformed body", UpstreamProtocolError("bad json"), F, "malformed_response", True, 0, 0),
    ("cut stream", UpstreamStreamCut("cut"), F, "stream_cut", True, 0, 0),
    # rescue replay diverged
    ("replay diverged", ReplayDiverged("differs"), F, "replay_diverged", False, 0, 0),
    # 429 asking a short wait: the request waits, the others skip it meanwhile
    ("429 retry-after 2s", status(429, headers={"Retry-After": "2"}), W,
     "rate_limited", False, 2.0, 2.0),
    ("429 retry-after at the limit", status(429, headers={"retry-after": "3"}), W,
     "rate_limited", False, 3.0, 3.0),
    ("429 retry-after HTTP date", status(429, headers={
        "retry-after": format_datetime(NOW + timedelta(seconds=2), usegmt=True)}), W,
     "rate_limited", False, 2.0, 2.0),
    ("429 retry-after-ms", status(429, headers={"retry-after-ms": "250"}), W,
     "rate_limited", False, 0.25, 0.25),
    ("429 x-ratelimit-reset-requests 20ms", status(429, headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20ms"}), W,
     "rate_limited", False, 0.02, 0.02),
    ("429 anthropic reset timestamp", status(429, headers={
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": rfc3339(1.5)}), W,
     "rate_limited", False, 1.5, 1.5),
    # 429 asking a long wait: the deployment cools down for that long
    ("429 retry-after 30s", status(429, headers={"retry-after": "30"}), F,
     "rate_limited", False, 30.0, 30.0),
    ("429 retry-after HTTP date far", status(429, headers={
        "retry-after": format_datetime(NOW + timedelta(seconds=60), usegmt=True)}), F,
     "rate_limited", False, 60.0, 60.0),
    ("429 x-ratelimit-reset-requests 1m30s", status(429, headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"}), F,
     "rate_limited", False, 90.0, 90.0),
    ("429 anthropic tokens reset far", status(429, headers={
        "anthropic-ratelimit-tokens-remaining": "0",
        "anthropic-ratelimit-tokens-reset": rfc3339(45)}), F,
     "rate_limited", False, 45.0, 45.0),
    # 400 context length exceeded
    ("openai context code", status(400, "too long", vendor_code="context_length_exceeded"), L,
     "context_length_exceeded", False, 0, 0),
    ("openai context message", status(400, "This model's maximum context length is 8192 tokens"),
     L, "context_length_exceeded", False, 0, 0),
    ("anthropic prompt too long", status(400, "prompt is too long: 210000 tokens > 200000"), L,
     "context_length_exceeded", False, 0, 0),
    ("413 too many tokens", status(413, "Too many tokens in request"), L,
     "context_length_exceeded", False, 0, 0),
    # 400 content policy, route says return
    ("content policy code", status(400, "no", vendor_code="content_policy_violation"), R,
     "content_policy", False, 0, 0),
    ("azure content filter", status(400, "The response was filtered: content_filter"), R,
     "content_policy", False, 0, 0),
    ("azure content management policy",
     status(400, "triggering Azure OpenAI's content management policy"), R,
     "content_policy", False, 0, 0),
    # other 4xx
    ("400 bad request", status(400, "messages: field required"), R, "status_400", False, 0, 0),
    ("401 bad key", status(401, "Incorrect API key"), R, "status_401", False, 0, 0),
    ("403 forbidden", status(403, "forbidden"), R, "status_403", False, 0, 0),
    ("404 unknown model", status(404, "model not found"), R, "status_404", False, 0, 0),
    ("422 unprocessable", status(422, "bad field"), R, "status_422", False, 0, 0),
]  # fmt: skip


@pytest.mark.parametrize(("error", "action", "reason", "breaker", "wait", "cooldown"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])  # fmt: skip
def test_classify_table(
    error: UpstreamError, action: Action, reason: str, breaker: bool, wait: float, cooldown: float
) -> None:
    verdict = classify(error, POLICY, random.Random(0), NOW)
    assert (verdict.action, verdict.reason, verdict.breaker_failure) == (action, reason, breaker)
    assert verdict.wait == pytest.approx(wait)
    assert verdict.cooldown == pytest.approx(cooldown)


CONTENT_POLICY_CASES = [
    ("return", POLICY, Action.RETURN),
    ("failover", FAILOVER_POLICY, Action.FAILOVER),
]


@pytest.mark.parametrize(("policy", "action"), [c[1:] for c in CONTENT_POLICY_CASES],
                         ids=[c[0] for c in CONTENT_POLICY_CASES])  # fmt: skip
def test_content_policy_follows_the_route_setting(policy: Policy, action: Action) -> None:
    error = status(400, "flagged by our safety system")
    verdict = classify(error, policy, random.Random(0), NOW)
    assert verdict == Verdict(action, "content_policy", False)


def test_content_policy_setting_does_not_touch_other_4xx() -> None:
    verdict = classify(status(401, "bad key"), FAILOVER_POLICY, random.Random(0), NOW)
    assert verdict.action is Action.RETURN


def test_rate_limit_max_wait_is_the_policy_threshold() -> None:
    error = status(429, headers={"retry-after": "2"})
    strict = Policy(rate_limit_max_wait=1.0, rate_limit_cooldown=1.0, content_policy_failover=False)
    assert classify(error, POLICY, random.Random(0), NOW).action is Action.WAIT_SAME
    verdict = classify(error, strict, random.Random(0), NOW)
    assert (verdict.action, verdict.cooldown) == (Action.FAILOVER, 2.0)


@pytest.mark.parametrize("cooldown", [1.0, 4.0, 0.5])
def test_bare_429_cools_down_with_jitter(cooldown: float) -> None:
    policy = Policy(rate_limit_max_wait=3.0, rate_limit_cooldown=cooldown,
                    content_policy_failover=False)  # fmt: skip
    rng = random.Random(2024)
    verdicts = [classify(status(429, "slow down"), policy, rng, NOW) for _ in range(2000)]
    assert {(v.action, v.reason, v.breaker_failure) for v in verdicts} == {
        (Action.FAILOVER, "rate_limited", False)
    }
    cooldowns = [v.cooldown for v in verdicts]
    assert all(v.wait == v.cooldown for v in verdicts)
    assert all(0.5 * cooldown <= c < 1.5 * cooldown for c in cooldowns)
    # spread over the whole range, not a constant
    assert min(cooldowns) < 0.6 * cooldown
    assert max(cooldowns) > 1.4 * cooldown


def test_429_with_unusable_header_is_a_bare_429() -> None:
    verdict = classify(status(429, headers={"retry-after": "soon"}), POLICY, random.Random(3), NOW)
    assert verdict.action is Action.FAILOVER
    assert 0.5 <= verdict.cooldown < 1.5


BACKOFF_CASES = [
    # attempt, base, cap, ceiling of the jitter range
    (1, 0.1, 2.0, 0.1),
    (2, 0.1, 2.0, 0.2),
    (3, 0.1, 2.0, 0.4),
    (5, 0.1, 2.0, 1.6),
    (6, 0.1, 2.0, 2.0),
    (30, 0.1, 2.0, 2.0),
    (1, 0.0, 2.0, 0.0),
]


@pytest.mark.parametrize(("attempt", "base", "cap", "ceiling"), BACKOFF_CASES)
def test_backoff_full_jitter_range(attempt: int, base: float, cap: float, ceiling: float) -> None:
    rng = random.Random(attempt)
    draws = [backoff(attempt, base, cap, rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in draws)
    if ceiling:
        assert max(draws) > 0.9 * ceiling
        assert min(draws) < 0.1 * ceiling
