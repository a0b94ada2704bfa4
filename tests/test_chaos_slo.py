"""SLO evaluation and the per-second series, pure: synthetic records, samples and timelines."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gateway.chaos.load import RequestRecord
from gateway.chaos.probe import Sample
from gateway.chaos.scenario import SLO, DownFault, FaultEvent
from gateway.chaos.series import per_second
from gateway.chaos.slo import (
    dead_vendor_attempts,
    evaluate,
    failover_times,
    lost,
    passed,
    percentile,
    return_times,
    route_attempts,
    success_rate,
)
from gateway.chaos.timeline import windows
from gateway.chaos.verdict import Verdict

VENDORS = ("alpha", "beta")
DOWN = DownFault(kind="down")


def rec(
    index: int,
    start: float,
    end: float,
    provider: str | None = "alpha",
    verdict: Verdict = Verdict.COMPLETE,
    route: str = "",
    stream: bool = False,
) -> RequestRecord:
    first_byte = start + (end - start) / 2 if stream else end
    return RequestRecord(
        index, stream, 5, start, end, first_byte, 200, provider, 1, route, verdict, ""
    )


def timeline(*events: dict[str, Any]) -> Any:
    return windows([FaultEvent.model_validate(e) for e in events], VENDORS)


ALPHA_DOWN = timeline({"vendor": "alpha", "at": 1, "duration": 2, "fault": {"kind": "down"}})


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 99, None), ([5.0], 99, 5.0), ([float(i) for i in range(1, 101)], 99, 99.0),
     ([float(i) for i in range(1, 101)], 50, 50.0), ([3.0, 1.0, 2.0], 100, 3.0)],
)  # fmt: skip
def test_percentile_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_success_rate_by_kind() -> None:
    records = [
        rec(0, 0, 1),
        rec(1, 0, 1, verdict=Verdict.CLEAN_ERROR),
        rec(2, 0, 1, stream=True),
        rec(3, 0, 1, stream=True, verdict=Verdict.TRUNCATED),
    ]
    assert success_rate(records) == 0.5
    assert success_rate(records, stream=False) == 0.5
    assert success_rate([r for r in records if not r.stream], stream=True) is None


@pytest.mark.parametrize(
    ("route", "vendor", "count"),
    [
        ("alpha/sim=ok", "alpha", 1),
        ("alpha/sim=failover:connect_error,beta/sim=ok", "alpha", 1),
        ("alpha/sim=skipped:breaker_open,beta/sim=ok", "alpha", 0),
        ("alpha/sim=retry:rate_limited,alpha/sim=failover:rate_limited,beta/sim=ok", "alpha", 2),
        ("alpha/a=b=failover:status_503", "alpha", 1),  # '=' inside a model name
        ("", "alpha", 0),
    ],
)
def test_route_attempts(route: str, vendor: str, count: int) -> None:
    assert route_attempts(route, vendor) == count


def test_failover_and_return_times() -> None:
    records = [
        rec(0, 0.5, 0.6),  # before the fault
        rec(1, 1.0, 1.3, provider="beta"),  # first failover ends 0.3 s after onset
        rec(2, 1.1, 1.2, provider="beta"),  # ...but this one ended earlier: 0.2 s
        rec(3, 2.9, 3.0, provider="alpha"),  # before the heal: does not count
        rec(4, 3.1, 3.9, provider="beta"),
        rec(5, 3.2, 3.5, provider="alpha", verdict=Verdict.CLEAN_ERROR),  # not complete
        rec(6, 3.6, 4.0, provider="alpha"),  # back on the primary 1.0 s after the heal
    ]
    assert failover_times(records, ALPHA_DOWN, "alpha") == [pytest.approx(0.2)]
    assert return_times(records, ALPHA_DOWN, "alpha") == [pytest.approx(1.0)]
    assert failover_times(records, ALPHA_DOWN, "beta") == []  # no fault on beta
    never = [rec(0, 1.5, 2.0, provider="alpha", verdict=Verdict.CLEAN_ERROR)]
    assert failover_times(never, ALPHA_DOWN, "alpha") == [math.inf]
    assert return_times(never, ALPHA_DOWN, "alpha") == [math.inf]


def test_failover_time_is_not_measured_when_every_vendor_is_faulted() -> None:
    everyone = timeline({"vendor": "*", "at": 1, "duration": 1, "fault": {"kind": "down"}})
    records = [rec(0, 2.5, 2.6, provider="alpha")]
    assert failover_times(records, everyone, "alpha") == []
    assert return_times(records, everyone, "alpha") == [pytest.approx(0.6)]


def test_dead_vendor_attempts_takes_the_larger_count() -> None:
    records = [
        rec(0, 1.2, 1.3, "beta", route="alpha/sim=failover:connect_error,beta/sim=ok"),
        rec(1, 1.5, 1.6, "beta", route="alpha/sim=skipped:breaker_open,beta/sim=ok"),
        rec(2, 3.5, 3.6, "alpha", route="alpha/sim=ok"),  # after the window
    ]

    def sample(t: float, alpha: int) -> Sample:
        return Sample(t, {}, {}, {"alpha": alpha, "beta": 0})

    refused = [sample(0.9, 10), sample(3.1, 10)]  # connections refused: the vendor saw none
    assert dead_vendor_attempts(records, ALPHA_DOWN, refused) == {(0, "alpha"): 1}
    hung = [sample(0.9, 10), sample(2.0, 25), sample(3.1, 40)]  # the vendor saw 30
    assert dead_vendor_attempts(records, ALPHA_DOWN, hung) == {(0, "alpha"): 30}


def test_lost_counts_every_way_to_lose_a_request() -> None:
    records = [
        rec(0, 0, 1),
        rec(1, 0, 1, verdict=Verdict.CLEAN_ERROR),
        rec(2, 0, 1, verdict=Verdict.TRUNCATED),
        rec(3, 0, 1, verdict=Verdict.HANG),
        rec(3, 0, 1),  # ended twice
    ]
    assert lost(records, issued=6) == {
        "truncated": 1,
        "hang": 1,
        "ended twice": 1,
        "never ended": 2,
    }
    assert lost(records[:2], issued=2) == {}


def test_evaluate_enforces_only_the_targets_set() -> None:
    records = [rec(i, i * 0.1, i * 0.1 + 0.05, "alpha") for i in range(10)]
    records.append(rec(10, 1.05, 1.25, "beta", route="alpha/sim=failover:x,beta/sim=ok"))
    records.append(rec(11, 3.2, 3.3, "alpha"))
    results = {r.name: r for r in evaluate(SLO(), records, 12, ALPHA_DOWN, [], "alpha")}
    assert all(r.passed is None for name, r in results.items() if name != "nothing lost")
    assert results["nothing lost"].passed is True
    assert results["success rate"].measured == "100.00% (12/12)"
    assert results["streaming success rate"].measured == "n/a"
    strict = SLO(
        success_rate=1.0,
        p99_latency_ms=150,
        failover_within_s=0.1,
        return_to_primary_within_s=0.5,
        max_attempts_on_dead_vendor=0,
    )
    results = {r.name: r for r in evaluate(strict, records, 12, ALPHA_DOWN, [], "alpha")}
    assert results["success rate"].passed is True
    assert results["p99 latency"].passed is False  # 200 ms
    assert results["time to fail over"].passed is False  # 0.25 s
    assert results["time to return to the primary"].passed is True  # 0.3 s
    assert results["attempts on a faulted vendor"].passed is False  # 1
    assert not passed(list(results.values()))
    assert passed([r for r in results.values() if r.passed is not False])


def test_per_second_buckets_by_start_time() -> None:
    records = [
        rec(0, 0.1, 0.2, "alpha"),
        rec(1, 0.5, 1.7, "beta"),
        rec(2, 1.2, 1.3, verdict=Verdict.CLEAN_ERROR, provider=None),
        rec(3, 1.4, 1.5, verdict=Verdict.TRUNCATED),
    ]
    samples = [
        Sample(0.0, {"alpha": "available"}, {"alpha": None}, {}),
        Sample(1.0, {"alpha": "half_open"}, {"alpha": "down"}, {}),
        Sample(1.5, {"alpha": "breaker_open"}, {"alpha": None}, {}),
    ]
    first, second = per_second(records, samples, VENDORS, 2.0)
    assert (first.requests, first.complete, first.success_rate) == (2, 2, 1.0)
    assert first.served == {"alpha": 1, "beta": 1}
    assert first.p99_ms == 1200.0
    assert (second.requests, second.clean_errors, second.lost) == (2, 1, 1)
    assert second.faults == {"alpha": "down", "beta": None}
    assert second.breakers == {"alpha": "breaker_open"}  # the worst state in that second


def test_a_stream_counts_as_answered_at_its_first_byte() -> None:
    stream = rec(0, 1.0, 1.6, provider="beta", stream=True)  # first byte at 1.3
    slow_json = rec(1, 1.0, 1.4, provider="beta")
    assert stream.answered == pytest.approx(1.3) and slow_json.answered == 1.4
    assert failover_times([stream, slow_json], ALPHA_DOWN, "alpha") == [pytest.approx(0.3)]
    back = rec(2, 3.1, 3.9, provider="alpha", stream=True)
    assert return_times([back], ALPHA_DOWN, "alpha") == [pytest.approx(0.5)]
