"""The fault timeline, pure: windows, flapping, '*', scaling, state at a time, labels."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.chaos.scenario import DownFault, FaultEvent
from gateway.chaos.timeline import (
    HEALTHY,
    VendorFaults,
    by_event,
    change_times,
    describe,
    state_at,
    windows,
)
from gateway.simulator import FaultSpec

VENDORS = ("alpha", "beta")
HANG = FaultSpec(kind="hang")
DOWN = DownFault(kind="down")


def event(vendor: str, at: float, duration: float, fault: Any, **extra: Any) -> FaultEvent:
    return FaultEvent.model_validate(
        {"vendor": vendor, "at": at, "duration": duration, "fault": fault, **extra}
    )


def spans(events: list[FaultEvent], scale: float = 1.0) -> list[tuple[str, float, float, int]]:
    return [
        (w.vendor, round(w.start, 6), round(w.end, 6), w.event)
        for w in windows(events, VENDORS, scale)
    ]


@pytest.mark.parametrize(
    ("events", "scale", "expected"),
    [
        ([event("alpha", 1, 2, HANG)], 1.0, [("alpha", 1, 3, 0)]),
        ([event("alpha", 1, 2, HANG)], 3.0, [("alpha", 3, 9, 0)]),
        ([event("*", 2, 1, DOWN)], 1.0, [("alpha", 2, 3, 0), ("beta", 2, 3, 0)]),
        (
            [event("alpha", 0, 3, DOWN, flap={"faulty": 0.5, "healthy": 1})],
            1.0,
            [("alpha", 0, 0.5, 0), ("alpha", 1.5, 2.0, 0)],
        ),
        (  # the last faulty period is clipped at the event's end
            [event("alpha", 0, 2.2, DOWN, flap={"faulty": 0.5, "healthy": 0.5})],
            1.0,
            [("alpha", 0, 0.5, 0), ("alpha", 1.0, 1.5, 0), ("alpha", 2.0, 2.2, 0)],
        ),
        (  # ordered by start, whatever the file's order
            [event("beta", 3, 1, HANG), event("alpha", 1, 1, HANG)],
            1.0,
            [("alpha", 1, 2, 1), ("beta", 3, 4, 0)],
        ),
    ],
)
def test_windows(
    events: list[FaultEvent], scale: float, expected: list[tuple[str, float, float, int]]
) -> None:
    assert spans(events, scale) == expected


def test_state_at_boundaries_down_wins_and_faults_keep_event_order() -> None:
    slow = FaultSpec(kind="latency", delay_ms=100)
    timeline = windows(
        [
            event("alpha", 1, 2, HANG),
            event("alpha", 2, 2, slow),
            event("alpha", 2.5, 1, DOWN),
            event("beta", 0, 1, slow),
        ],
        VENDORS,
    )
    cases = [
        (0.0, VendorFaults(), VendorFaults(faults=(slow,))),
        (1.0, VendorFaults(faults=(HANG,)), HEALTHY),  # start is inclusive, end exclusive
        (2.0, VendorFaults(faults=(HANG, slow)), HEALTHY),
        (2.7, VendorFaults(down=True), HEALTHY),
        (3.5, VendorFaults(faults=(slow,)), HEALTHY),
        (4.0, HEALTHY, HEALTHY),
    ]
    for t, alpha, beta in cases:
        assert state_at(timeline, VENDORS, t) == {"alpha": alpha, "beta": beta}, t
    assert change_times(timeline) == (0, 1, 2, 2.5, 3, 3.5, 4)


def test_by_event_groups_a_flapping_events_periods() -> None:
    timeline = windows(
        [event("*", 0, 2, DOWN, flap={"faulty": 0.5, "healthy": 0.5}), event("beta", 5, 1, HANG)],
        VENDORS,
    )
    groups = by_event(timeline)
    assert sorted(groups) == [(0, "alpha"), (0, "beta"), (1, "beta")]
    assert [w.start for w in groups[(0, "alpha")]] == [0, 1.0]


@pytest.mark.parametrize(
    ("fault", "label"),
    [
        (DOWN, "down"),
        (HANG, "hang"),
        (FaultSpec(kind="status", status=503, rate=0.3), "503 @30%"),
        (FaultSpec(kind="rate_limit", retry_after=2), "429 Retry-After 2s"),
        (FaultSpec(kind="rate_limit"), "429 no Retry-After"),
        (FaultSpec(kind="slow_first_token", delay_ms=2500), "slow_first_token 2500ms"),
        (FaultSpec(kind="cut", after_chunks=3, stream=True), "cut after 3 (streams)"),
        (FaultSpec(kind="malformed", after_chunks=0), "malformed after 0"),
    ],
)
def test_describe(fault: Any, label: str) -> None:
    assert describe(fault) == label


def test_vendor_faults_label() -> None:
    assert HEALTHY.healthy and HEALTHY.label is None
    assert VendorFaults(down=True).label == "down"
    both = VendorFaults(faults=(HANG, FaultSpec(kind="reset")))
    assert not both.healthy and both.label == "hang + reset"
