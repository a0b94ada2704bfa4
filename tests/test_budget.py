"""The retry budget over a sliding window, driven by an explicit clock."""

from __future__ import annotations

import pytest

from gateway.budget import RetryBudget


def spend(budget: RetryBudget, now: float, times: int) -> int:
    """How many of `times` retries the budget granted."""
    return sum(budget.try_spend(now) for _ in range(times))


CAPACITY_CASES = [
    # ratio, min/s, window, requests, retries granted out of 1000
    ("floor only", 0.2, 1.0, 10.0, 0, 10),
    ("ratio only", 0.2, 0.0, 10.0, 100, 20),
    ("ratio plus floor", 0.2, 1.0, 10.0, 100, 30),
    ("no budget at all", 0.0, 0.0, 10.0, 50, 0),
    ("fractional allowance rounds down", 0.25, 0.0, 10.0, 10, 2),
    ("ratio above one", 2.0, 0.0, 5.0, 3, 6),
]


@pytest.mark.parametrize(("ratio", "floor", "window", "requests", "granted"),
                         [c[1:] for c in CAPACITY_CASES],
                         ids=[c[0] for c in CAPACITY_CASES])  # fmt: skip
def test_capacity(ratio: float, floor: float, window: float, requests: int, granted: int) -> None:
    budget = RetryBudget(ratio, floor, window)
    for _ in range(requests):
        budget.record_request(100.0)
    assert spend(budget, 100.0, 1000) == granted
    assert budget.snapshot(100.0) == (requests, granted)


def test_refused_spends_are_not_counted() -> None:
    budget = RetryBudget(0.0, 0.3, 10.0)
    assert spend(budget, 0.0, 5) == 3
    assert budget.snapshot(0.0) == (0, 3)


def test_more_requests_refill_the_budget() -> None:
    budget = RetryBudget(0.5, 0.0, 10.0)
    budget.record_request(0.0)
    budget.record_request(0.0)
    assert spend(budget, 0.0, 5) == 1
    budget.record_request(1.0)
    budget.record_request(1.0)
    assert spend(budget, 1.0, 5) == 1


SLIDE_CASES = [
    # the second spend time, retries granted then (window 10 s, all 5 spent at t=100.2)
    ("same second", 100.9, 0),
    ("still inside the window", 109.9, 0),
    ("bucket of second 100 leaves at 110", 110.0, 5),
    ("long after", 500.0, 5),
]


@pytest.mark.parametrize(("later", "granted"), [c[1:] for c in SLIDE_CASES],
                         ids=[c[0] for c in SLIDE_CASES])  # fmt: skip
def test_window_slides(later: float, granted: int) -> None:
    budget = RetryBudget(0.0, 0.5, 10.0)
    assert spend(budget, 100.2, 10) == 5
    assert spend(budget, later, 10) == granted


def test_requests_expire_with_the_window() -> None:
    budget = RetryBudget(1.0, 0.0, 10.0)
    for t in range(10):
        budget.record_request(float(t))
    assert budget.snapshot(9.5) == (10, 0)
    assert budget.snapshot(12.0) == (7, 0)  # seconds 0, 1, 2 have left
    assert spend(budget, 12.0, 20) == 7
    assert budget.snapshot(30.0) == (0, 0)
    assert not budget.try_spend(30.0)


def test_retries_expire_per_second() -> None:
    budget = RetryBudget(0.0, 0.4, 5.0)  # two retries per 5 s window
    assert budget.try_spend(0.0)
    assert budget.try_spend(3.0)
    assert not budget.try_spend(4.9)
    assert budget.try_spend(5.0)  # the retry of second 0 has left
    assert not budget.try_spend(7.0)
    assert budget.try_spend(8.0)  # and now the one of second 3
