"""Pure health logic on a fake clock: which attempts count, ejection, probes, samples, and
the routing rule that never ejects every deployment of an alias."""

from __future__ import annotations

import random

import pytest

from gateway.config import load_text
from gateway.health.config import OutlierConfig, ProbeConfig
from gateway.health.outlier import OutlierWindow, Verdict, judge, verdict
from gateway.health.record import DeploymentHealth
from gateway.health.samples import Samples
from gateway.routing import Availability, Deployment, Route, Status, build_routes, plan

VERDICT_CASES = [
    ("ok", "ok", Verdict.SUCCESS),
    ("failover", "status_500", Verdict.FAILURE),
    ("failover", "status_503", Verdict.FAILURE),
    ("failover", "status_529", Verdict.FAILURE),
    ("failover", "status_408", Verdict.FAILURE),
    ("failover", "timeout_first_token", Verdict.FAILURE),
    ("failover", "timeout_connect", Verdict.FAILURE),
    ("failover", "connect_error", Verdict.FAILURE),
    ("failover", "malformed_response", Verdict.FAILURE),
    ("failover", "stream_cut", Verdict.FAILURE),
    ("failover", "rate_limited", Verdict.NEUTRAL),
    ("wait_same", "rate_limited", Verdict.NEUTRAL),
    ("returned", "status_400", Verdict.NEUTRAL),
    ("returned", "context_length_exceeded", Verdict.NEUTRAL),
    ("returned", "content_policy", Verdict.NEUTRAL),
    ("failover", "replay_diverged", Verdict.NEUTRAL),
    ("skipped", "breaker_open", Verdict.NEUTRAL),
]


@pytest.mark.parametrize(("outcome", "reason", "expected"), VERDICT_CASES)
def test_verdict(outcome: str, reason: str, expected: Verdict) -> None:
    assert verdict(outcome, reason) is expected


CONFIG = OutlierConfig(
    window_seconds=10, min_calls=4, failure_rate=0.5, slow_call_seconds=1.0,
    slow_call_rate=0.75, eject_seconds=5, max_eject_seconds=30,
)  # fmt: skip

# (failed, slow) per call; expected cause (None: not ejected)
JUDGE_CASES = [
    ("too few calls", [(True, False)] * 3, None),
    ("half failed", [(True, False), (False, False)] * 2, "failure_rate"),
    ("just under the failure rate", [(True, False)] + [(False, False)] * 3, None),
    ("slow calls", [(False, True)] * 3 + [(False, False)], "slow_calls"),
    ("some slow", [(False, True)] * 2 + [(False, False)] * 2, None),
    ("failures win over slowness", [(True, False)] * 2 + [(False, True)] * 2, "failure_rate"),
]  # fmt: skip


@pytest.mark.parametrize(("calls", "cause"), [c[1:] for c in JUDGE_CASES],
                         ids=[c[0] for c in JUDGE_CASES])  # fmt: skip
def test_judge(calls: list[tuple[bool, bool]], cause: str | None) -> None:
    window = OutlierWindow()
    for i, (failed, slow) in enumerate(calls):
        window.add(float(i), failed, slow, CONFIG.window_seconds)
    ejection = judge(window, CONFIG, 0)
    assert (ejection.cause if ejection else None) == cause
    if ejection is not None:
        assert ejection.seconds == 5
        assert ejection.success_rate == pytest.approx(1 - window.failures / window.calls)
        assert f"of {window.calls} calls" in ejection.why


@pytest.mark.parametrize(("in_a_row", "seconds"), [(0, 5), (1, 10), (2, 20), (3, 30), (9, 30)])
def test_ejection_time_doubles_up_to_the_cap(in_a_row: int, seconds: float) -> None:
    window = OutlierWindow()
    for i in range(4):
        window.add(float(i), True, False, 10)
    ejection = judge(window, CONFIG, in_a_row)
    assert ejection is not None and ejection.seconds == seconds


def test_window_forgets_old_calls() -> None:
    window = OutlierWindow()
    window.add(0.0, True, True, 10)
    window.add(5.0, False, False, 10)
    assert (window.calls, window.failures, window.slow) == (2, 1, 1)
    window.add(10.5, False, False, 10)
    assert (window.calls, window.failures, window.slow) == (2, 0, 0)
    window.prune(100.0, 10)
    assert window.calls == 0


def feed(health: DeploymentHealth, outcomes: list[Verdict], now: float = 0.0) -> list[bool]:
    return [
        health.record_attempt(v, "status_500", "boom", 10.0, now + i * 0.1, CONFIG)
        for i, v in enumerate(outcomes)
    ]


def test_ejection_lasts_its_time_then_lifts() -> None:
    health = DeploymentHealth()
    ejected = feed(health, [Verdict.SUCCESS, Verdict.FAILURE, Verdict.SUCCESS, Verdict.FAILURE])
    assert ejected == [False, False, False, True]
    status = health.ejection(0.5)
    assert status is not None and status.availability is Availability.EJECTED
    assert status.until == pytest.approx(5.3)
    assert status.success_rate == pytest.approx(0.5)
    assert "failure rate 50% (2 of 4 calls" in status.why
    assert health.ejection(5.31) is None
    assert health.ejections == {"failure_rate": 1}
    assert (health.calls, health.failures) == (4, 2)
    assert health.window.calls == 0  # judged afresh after an ejection


def test_calls_while_ejected_do_not_extend_it() -> None:
    health = DeploymentHealth()
    feed(health, [Verdict.FAILURE] * 4)
    until = health.ejected_until
    assert feed(health, [Verdict.FAILURE] * 4, now=1.0) == [False] * 4
    assert health.ejected_until == until


def test_flapping_doubles_and_a_quiet_spell_starts_over() -> None:
    health = DeploymentHealth()
    feed(health, [Verdict.FAILURE] * 4, now=0.0)
    assert health.ejected_until == pytest.approx(0.3 + 5)
    feed(health, [Verdict.FAILURE] * 4, now=10.0)
    assert health.ejected_until == pytest.approx(10.3 + 10)
    feed(health, [Verdict.FAILURE] * 4, now=100.0)  # > max_eject_seconds after the last
    assert health.ejected_until == pytest.approx(100.3 + 5)


def test_neutral_outcomes_are_counted_apart() -> None:
    health = DeploymentHealth()
    feed(health, [Verdict.NEUTRAL] * 10)
    assert (health.calls, health.failures, health.neutral) == (0, 0, 10)
    assert health.ejection(1.0) is None


def test_disabled_outlier_detection_still_counts() -> None:
    health = DeploymentHealth()
    off = CONFIG.model_copy(update={"enabled": False})
    for i in range(10):
        assert not health.record_attempt(Verdict.FAILURE, "status_500", "", 1.0, i, off)
    assert (health.calls, health.failures) == (10, 10)
    assert health.ejection(10.0) is None


PROBE = ProbeConfig(healthy_threshold=2, unhealthy_threshold=3)
# sequence of probe results -> (healthy after each, flipped after each)
PROBE_CASES = [
    ("two failures are not enough", [False, False], [True, True], [False, False]),
    ("three failures flip", [False, False, False], [True, True, False], [False, False, True]),
    ("a success resets the count", [False, False, True, False, False],
     [True] * 5, [False] * 5),
    ("back after two successes", [False] * 3 + [True, True],
     [True, True, False, False, True], [False, False, True, False, True]),
    ("a failure in between restarts recovery", [False] * 3 + [True, False, True, True],
     [True, True, False, False, False, False, True], [False, False, True, False, False, False, True]),
]  # fmt: skip


@pytest.mark.parametrize(("results", "healthy", "flipped"), [c[1:] for c in PROBE_CASES],
                         ids=[c[0] for c in PROBE_CASES])  # fmt: skip
def test_probe_thresholds(results: list[bool], healthy: list[bool], flipped: list[bool]) -> None:
    health = DeploymentHealth()
    got_healthy, got_flipped = [], []
    for i, ok in enumerate(results):
        got_flipped.append(health.record_probe(ok, "" if ok else "HTTP 503", float(i), PROBE))
        got_healthy.append(health.probe.healthy)
    assert got_healthy == healthy
    assert got_flipped == flipped
    assert health.probe.total == len(results)
    assert health.probe.failures == results.count(False)


def test_probe_failure_is_an_ejection_with_the_reason() -> None:
    health = DeploymentHealth()
    for i in range(3):
        health.record_probe(False, "HTTP 503: overloaded", float(i), PROBE)
    status = health.ejection(3.0)
    assert status == Status(
        Availability.EJECTED, None, "health probe failed 3 times in a row: HTTP 503: overloaded"
    )
    assert health.probe.since == 2.0
    assert health.ejections == {"probe": 1}


def test_samples_percentiles_and_ewma() -> None:
    samples = Samples(keep=100)
    assert samples.percentiles(0.5) == {"p50": None}
    for value in range(1, 101):
        samples.add(float(value), 0.5)
    assert samples.percentiles(0.5, 0.9, 0.99) == {"p50": 50.0, "p90": 90.0, "p99": 99.0}
    assert samples.ewma == pytest.approx(99.0, abs=0.01)
    samples.add(1000.0, 0.5)  # the oldest sample leaves
    assert len(samples) == 100
    assert samples.percentiles(1.0) == {"p100": 1000.0}


PROVIDERS = "providers:\n  a: {kind: openai, api_key: k}\n  b: {kind: openai, api_key: k}\n  c: {kind: openai, api_key: k}\n"


def route3() -> Route:
    config = load_text(PROVIDERS + "routes:\n  r: {fallbacks: [a/m, b/m, c/m]}\n").config
    return build_routes(config)["r"]


class View:
    def __init__(self, statuses: dict[str, Status]) -> None:
        self.statuses = statuses

    def status(self, deployment: Deployment, now: float) -> Status:
        return self.statuses.get(deployment.provider, Status(Availability.AVAILABLE))


def ejected(rate: float) -> Status:
    return Status(Availability.EJECTED, None, "ejected", rate)


OPEN = Status(Availability.BREAKER_OPEN, 50.0, "breaker open")
DRAINED = Status(Availability.DRAINED)
# statuses -> (candidates, demoted)
DEMOTION_CASES = [
    ("one healthy: ejected ones stay out", {"a": ejected(0.9), "b": ejected(0.5)}, ["c"], []),
    ("all ejected: the least bad is tried", {"a": ejected(0.2), "b": ejected(0.7),
     "c": ejected(0.4)}, ["b"], ["b"]),
    ("ties go to plan order", {"a": ejected(0.5), "b": ejected(0.5), "c": ejected(0.5)},
     ["a"], ["a"]),
    ("probe-failed (0%) loses to a brownout", {"a": ejected(0.0), "b": OPEN, "c": ejected(0.6)},
     ["c"], ["c"]),
    ("an open breaker is never demoted into", {"a": OPEN, "b": OPEN, "c": OPEN}, [], []),
    ("an operator's drain is respected", {"a": DRAINED, "b": DRAINED, "c": ejected(0.1)},
     ["c"], ["c"]),
    ("only drained and open: refused", {"a": DRAINED, "b": OPEN, "c": DRAINED}, [], []),
]  # fmt: skip


@pytest.mark.parametrize(("statuses", "candidates", "demoted"), [c[1:] for c in DEMOTION_CASES],
                         ids=[c[0] for c in DEMOTION_CASES])  # fmt: skip
def test_never_eject_every_deployment(
    statuses: dict[str, Status], candidates: list[str], demoted: list[str]
) -> None:
    p = plan(route3(), View(statuses), random.Random(0), 0.0)
    assert [d.provider for d in p.candidates] == candidates
    assert [s.deployment.provider for s in p.demoted] == demoted
    listed = [d.provider for d in p.candidates] + [s.deployment.provider for s in p.skipped]
    assert sorted(listed) == ["a", "b", "c"]  # each deployment exactly once


def test_attempts_from_before_a_breaker_change_are_counted_not_judged() -> None:
    health = DeploymentHealth()
    health.breaker_since = 10.0  # the breaker opened at t=10
    for i in range(6):  # started at 9.5 (500 ms before), finished after it opened
        assert not health.record_attempt(Verdict.FAILURE, "timeout_first_token", "", 500.0,
                                         10.0 + i * 0.001, CONFIG)  # fmt: skip
    assert (health.calls, health.failures, health.window.calls) == (6, 6, 0)
    assert health.ejection(11.0) is None
    ejected = [health.record_attempt(Verdict.FAILURE, "status_500", "", 5.0, 12.0 + i, CONFIG)
               for i in range(4)]  # fmt: skip
    assert ejected == [False, False, False, True]  # calls admitted after it: judged
