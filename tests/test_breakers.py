"""DeploymentBreaker: trips, brownouts, one half-open trial, growing open time, neutral outcomes.

pybreaker times its open state with the wall clock, so open times here are a few
milliseconds and tests sleep past them; everything else runs on a fake clock.
"""

from __future__ import annotations

import time

import pytest

from gateway.breakers import BreakerRejected, DeploymentBreaker
from gateway.config import BreakerConfig
from gateway.routing import Availability

OPEN_S = 0.02


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def config(**overrides: float) -> BreakerConfig:
    values: dict[str, float] = {"consecutive_failures": 3, "failure_rate": 0.3,
                                "window_seconds": 10.0, "min_calls": 10,
                                "open_seconds": OPEN_S, "max_open_seconds": 8 * OPEN_S}  # fmt: skip
    values.update(overrides)
    return BreakerConfig.model_validate(values)


def breaker(clock: Clock | None = None, **overrides: float) -> DeploymentBreaker:
    return DeploymentBreaker("p/m", config(**overrides), clock or Clock())


def run(b: DeploymentBreaker, outcomes: str) -> None:
    """One call per letter: F failed, S succeeded, N neutral (429, client error, client left)."""
    for outcome in outcomes:
        with b.attempt() as record:
            record.failed = outcome == "F"
            record.neutral = outcome == "N"


def wait_open_time(b: DeploymentBreaker) -> None:
    time.sleep(b.open_seconds + 0.005)


def availability(b: DeploymentBreaker) -> Availability:
    return b.status(0.0).availability


CONSECUTIVE_CASES = [
    # consecutive_failures, outcomes, state after
    (1, "F", "open"),
    (3, "FF", "closed"),
    (3, "FFF", "open"),
    (3, "FFSFF", "closed"),
    (3, "FFSFFF", "open"),
    (5, "FFFF", "closed"),
    (5, "FFFFF", "open"),
    # neutral outcomes neither count as failures nor break a run of them
    (3, "FFNF", "open"),
    (3, "FNFNNF", "open"),
    (3, "NNNNNNNNNNNN", "closed"),
    (3, "FFNNN", "closed"),
]


@pytest.mark.parametrize(("limit", "outcomes", "state"), CONSECUTIVE_CASES)
def test_consecutive_failures(limit: int, outcomes: str, state: str) -> None:
    b = breaker(consecutive_failures=limit, min_calls=1000)
    run(b, outcomes)
    assert b.state == state


def test_open_breaker_rejects_and_tells_when_it_may_retry() -> None:
    b = breaker()
    run(b, "FFF")
    status = b.status(500.0)
    assert status.availability is Availability.BREAKER_OPEN
    assert status.until is not None
    assert 500.0 < status.until <= 500.0 + OPEN_S
    with pytest.raises(BreakerRejected) as rejected, b.attempt():
        pytest.fail("an open breaker let a call through")
    assert rejected.value.status.availability is Availability.BREAKER_OPEN


def test_neutral_outcomes_stay_out_of_the_rate_window() -> None:
    b = breaker()
    run(b, "FSNNN")
    assert b.failure_rate() == (1, 2)


BROWNOUT_CASES = [
    # outcomes (consecutive_failures is out of reach), trips
    ("30% failures over min_calls trips", "SSFSSFSSSF", True),
    ("20% failures does not", "SSFSSSSFSS", False),
    ("40% failures trips at the first failure past min_calls", "SFSFSFSFSS" + "F", True),
    ("50% but under min_calls", "SFSFSFSF", False),
    ("trips only on a failure, not on a success", "FFFSSSSSSS", False),
    ("neutral calls do not dilute the rate", "SSFSSFSSSNNNNNNNNF", True),
    ("neutral calls do not make up min_calls", "FFNNNNNNNNNNFF", False),
]


@pytest.mark.parametrize(("outcomes", "trips"), [c[1:] for c in BROWNOUT_CASES],
                         ids=[c[0] for c in BROWNOUT_CASES])  # fmt: skip
def test_brownout_failure_rate(outcomes: str, trips: bool) -> None:
    b = breaker(consecutive_failures=100)
    run(b, outcomes)
    assert b.state == ("open" if trips else "closed")


def test_failure_rate_window_slides() -> None:
    clock = Clock()
    b = breaker(clock, consecutive_failures=100)
    run(b, "FFFFF")  # 100% failures, but short of min_calls
    clock.t += 11.0  # they leave the 10 s window
    run(b, "SSSSSSSSS")
    assert b.failure_rate() == (0, 9)
    run(b, "SSSF")  # 1 failure in 13 calls
    assert b.state == "closed"
    clock.t += 5.0
    run(b, "FFFF")  # 5 of 17 in the window: 29%
    assert b.state == "closed"
    run(b, "F")  # 6 of 18: 33%
    assert b.state == "open"


def test_opening_clears_the_rate_window() -> None:
    b = breaker()
    run(b, "SSSSSSSFFF")
    assert b.state == "open"
    assert b.failure_rate()[0] <= 1


def test_half_open_admits_exactly_one_trial() -> None:
    b = breaker()
    run(b, "FFF")
    assert availability(b) is Availability.BREAKER_OPEN
    wait_open_time(b)
    assert availability(b) is Availability.TRIAL
    with b.attempt() as trial:
        assert availability(b) is Availability.TRIAL_BUSY
        for _ in range(3):
            with pytest.raises(BreakerRejected) as rejected, b.attempt():
                pytest.fail("a second call got in while the trial was in flight")
            assert rejected.value.status.availability is Availability.TRIAL_BUSY
        trial.failed = False
    assert b.state == "closed"
    assert availability(b) is Availability.AVAILABLE
    run(b, "SS")


TRIAL_CASES = [
    # trial outcome, state after, availability right after
    ("S", "closed", Availability.AVAILABLE),
    ("F", "open", Availability.BREAKER_OPEN),
    ("N", "half-open", Availability.TRIAL),  # a 429 or a client leaving proves nothing
]


@pytest.mark.parametrize(("outcome", "state", "after"), TRIAL_CASES)
def test_trial_outcome(outcome: str, state: str, after: Availability) -> None:
    b = breaker()
    run(b, "FFF")
    wait_open_time(b)
    run(b, outcome)
    assert b.state == state
    assert availability(b) is after


def test_trial_abandoned_by_an_exception_frees_the_slot() -> None:
    b = breaker()
    run(b, "FFF")
    wait_open_time(b)
    with pytest.raises(KeyError), b.attempt():
        raise KeyError("cancelled")
    assert b.state != "closed"
    assert availability(b) is Availability.TRIAL
    run(b, "S")
    assert b.state == "closed"


def test_late_outcomes_of_calls_admitted_before_the_trip_are_ignored() -> None:
    b = breaker()
    guards = [b.attempt() for _ in range(8)]
    records = [g.__enter__() for g in guards]
    for guard, record in zip(guards, records, strict=True):
        record.failed = True
        guard.__exit__(None, None, None)
    assert b.state == "open"
    assert b.transitions == 1  # not re-opened by each late failure
    assert b.open_seconds == pytest.approx(OPEN_S)  # nor counted as a flapping vendor


def test_open_time_doubles_for_a_flapping_vendor_up_to_the_cap() -> None:
    b = breaker()
    seen = []
    run(b, "FFF")
    for _ in range(5):
        seen.append(b.open_seconds)
        wait_open_time(b)
        run(b, "F")  # the trial fails: same outage
    assert seen == pytest.approx([OPEN_S, 2 * OPEN_S, 4 * OPEN_S, 8 * OPEN_S, 8 * OPEN_S])


def test_open_time_keeps_growing_when_it_closes_and_trips_again_soon() -> None:
    clock = Clock()
    b = breaker(clock)
    run(b, "FFF")
    wait_open_time(b)
    run(b, "S")
    assert b.state == "closed"
    clock.t += 0.1  # closed for less than max_open_seconds: a flap
    run(b, "FFF")
    assert b.open_seconds == pytest.approx(2 * OPEN_S)


def test_open_time_resets_after_a_stable_period() -> None:
    clock = Clock()
    b = breaker(clock)
    run(b, "FFF")
    wait_open_time(b)
    run(b, "F")
    assert b.open_seconds == pytest.approx(2 * OPEN_S)
    wait_open_time(b)
    run(b, "S")
    clock.t += 100.0  # stable for longer than max_open_seconds
    run(b, "FFF")
    assert b.open_seconds == pytest.approx(OPEN_S)


def test_failed_trial_long_after_the_last_close_still_doubles() -> None:
    clock = Clock()
    b = breaker(clock)
    run(b, "FFF")
    wait_open_time(b)
    run(b, "S")
    clock.t += 100.0  # a long stable period, then a new outage
    run(b, "FFF")
    assert b.open_seconds == pytest.approx(OPEN_S)
    wait_open_time(b)
    clock.t += 0.1
    run(b, "F")  # the outage goes on
    assert b.open_seconds == pytest.approx(2 * OPEN_S)


def test_forced_open_rejects_until_released() -> None:
    b = breaker()
    b.force("open")
    status = b.status(0.0)
    assert status.availability is Availability.BREAKER_OPEN
    assert "operator" in status.why
    time.sleep(OPEN_S + 0.005)
    with pytest.raises(BreakerRejected), b.attempt():
        pytest.fail("a forced-open breaker let a call through")
    b.force(None)
    assert availability(b) is Availability.AVAILABLE
    run(b, "FF")
    assert b.state == "closed"
    run(b, "F")
    assert b.state == "open"
    assert b.open_seconds == pytest.approx(OPEN_S)  # forcing it open was no vendor trip


def test_forced_closed_never_trips() -> None:
    b = breaker(min_calls=1)  # a single failure would trip it on the failure rate
    b.force("closed")
    run(b, "F" * 20)
    assert availability(b) is Availability.AVAILABLE
    assert b.state == "closed"
    b.force(None)
    run(b, "F")
    assert b.state == "open"


def test_forced_closed_lets_an_open_breaker_through() -> None:
    b = breaker()
    run(b, "FFF")
    b.force("closed")
    assert availability(b) is Availability.AVAILABLE
    run(b, "FFFS")


def test_listeners_hear_every_transition() -> None:
    heard: list[tuple[str, str, str]] = []
    b = DeploymentBreaker("p/m", config(), Clock(), (lambda *change: heard.append(change),))
    run(b, "FFF")
    wait_open_time(b)
    run(b, "S")
    assert heard == [("p/m", "closed", "open"), ("p/m", "open", "half-open"),
                     ("p/m", "half-open", "closed")]  # fmt: skip
    assert b.transitions == 3
