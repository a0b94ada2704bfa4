"""SLO evaluation, pure: a run's records, timeline and samples in, one result per SLO out.

How each figure is measured (times in seconds after the load started):

success rate         complete answers / requests (all, non-streaming, streaming)
p99 latency          99th percentile (nearest rank) of end - start over every request
time to fail over    per fault event on the primary alone: from its first window's start to
                     the answer of the first request started after it and completed by
                     another vendor (a stream's answer is its first byte, else the end)
time to return       per fault event on the primary: from its last window's end to the
                     answer of the first request started after it and completed by the
                     primary again
attempts on a dead   per fault event and vendor: attempts it received inside its windows, the
vendor               larger of the gateway's count (x-gateway-route entries that were not
                     skipped) and the vendor's own (requests it saw between samples)
nothing lost         every request issued ended exactly once, as a complete answer or a clean
                     error (OpenAI error JSON, or a stream's error event)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.chaos.load import RequestRecord
from gateway.chaos.probe import Sample
from gateway.chaos.scenario import SLO
from gateway.chaos.timeline import Window, by_event


@dataclass(frozen=True, slots=True)
class SLOResult:
    name: str
    target: str  # "" when the scenario sets no target
    measured: str
    passed: bool | None  # None: reported, not enforced
    detail: str = ""


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def success_rate(records: Sequence[RequestRecord], stream: bool | None = None) -> float | None:
    chosen = [r for r in records if stream is None or r.stream == stream]
    if not chosen:
        return None
    return sum(r.ok for r in chosen) / len(chosen)


def _provider(entry: str) -> tuple[str, str]:
    """'alpha/sim=failover:status_503' -> ('alpha', 'failover')."""
    deployment, _, outcome = entry.rpartition("=")
    return deployment.partition("/")[0], outcome.partition(":")[0]


def route_attempts(route: str, vendor: str) -> int:
    """How many attempts an x-gateway-route header shows on `vendor` (skips not counted)."""
    count = 0
    for entry in filter(None, route.split(",")):
        provider, outcome = _provider(entry)
        count += provider == vendor and outcome != "skipped"
    return count


def _primary_events(
    timeline: Sequence[Window], primary: str, alone: bool = False
) -> list[tuple[Window, ...]]:
    """Window groups of the fault events on the primary; with `alone`, only events that
    fault no other vendor (failing over needs somewhere to go)."""
    grouped = by_event(timeline)
    shared = {event for event, vendor in grouped if vendor != primary}
    return [
        ws
        for (event, vendor), ws in grouped.items()
        if vendor == primary and not (alone and event in shared)
    ]


def failover_times(
    records: Sequence[RequestRecord], timeline: Sequence[Window], primary: str
) -> list[float]:
    """Per fault event on the primary alone; inf when no other vendor completed a request."""
    times = []
    for ws in _primary_events(timeline, primary, alone=True):
        onset = ws[0].start
        ends = [
            r.answered
            for r in records
            if r.start >= onset and r.ok and r.provider not in (None, primary)
        ]
        times.append(min(ends) - onset if ends else math.inf)
    return times


def return_times(
    records: Sequence[RequestRecord], timeline: Sequence[Window], primary: str
) -> list[float]:
    """Per fault event on the primary; inf when the primary never served again."""
    times = []
    for ws in _primary_events(timeline, primary):
        healed = ws[-1].end
        ends = [r.answered for r in records if r.start >= healed and r.ok and r.provider == primary]
        times.append(min(ends) - healed if ends else math.inf)
    return times


def _seen_between(samples: Sequence[Sample], vendor: str, start: float, end: float) -> int:
    """Requests `vendor` received from the last sample at or before `start` to the first at
    or after `end` (so the count errs on the generous side)."""
    before = [s.requests.get(vendor, 0) for s in samples if s.t <= start]
    after = [s.requests.get(vendor, 0) for s in samples if s.t >= end]
    low = before[-1] if before else 0
    high = after[0] if after else (samples[-1].requests.get(vendor, 0) if samples else 0)
    return max(0, high - low)


def dead_vendor_attempts(
    records: Sequence[RequestRecord], timeline: Sequence[Window], samples: Sequence[Sample]
) -> dict[tuple[int, str], int]:
    """(event index, vendor) -> attempts the faulted vendor received inside its windows."""
    out = {}
    for (event, vendor), ws in by_event(timeline).items():
        by_gateway = sum(
            route_attempts(r.route, vendor) for r in records if any(w.covers(r.start) for w in ws)
        )
        by_vendor = sum(_seen_between(samples, vendor, w.start, w.end) for w in ws)
        out[(event, vendor)] = max(by_gateway, by_vendor)
    return out


def lost(records: Sequence[RequestRecord], issued: int) -> Counter[str]:
    """What went wrong, by kind: empty when nothing was lost."""
    problems: Counter[str] = Counter(r.verdict.value for r in records if not r.verdict.clean)
    indexes = Counter(r.index for r in records)
    duplicated = sum(n - 1 for n in indexes.values() if n > 1)
    if duplicated:
        problems["ended twice"] += duplicated
    missing = issued - len(indexes)
    if missing > 0:
        problems["never ended"] += missing
    return problems


def evaluate(
    slo: SLO,
    records: Sequence[RequestRecord],
    issued: int,
    timeline: Sequence[Window],
    samples: Sequence[Sample],
    primary: str,
) -> list[SLOResult]:
    return [
        _rate("success rate", records, None, slo.success_rate),
        _rate("non-streaming success rate", records, False, slo.non_stream_success_rate),
        _rate("streaming success rate", records, True, slo.stream_success_rate),
        _p99(records, slo.p99_latency_ms),
        _seconds(
            "time to fail over", failover_times(records, timeline, primary), slo.failover_within_s
        ),
        _seconds(
            "time to return to the primary",
            return_times(records, timeline, primary),
            slo.return_to_primary_within_s,
        ),
        _attempts(
            dead_vendor_attempts(records, timeline, samples), slo.max_attempts_on_dead_vendor
        ),
        _nothing_lost(lost(records, issued), issued, slo.nothing_lost),
    ]


def _rate(
    name: str, records: Sequence[RequestRecord], stream: bool | None, target: float | None
) -> SLOResult:
    chosen = [r for r in records if stream is None or r.stream == stream]
    want = "" if target is None else f">= {target:.2%}"
    if not chosen:
        return SLOResult(name, want, "n/a", None, "no such requests in this run")
    ok = sum(r.ok for r in chosen)
    rate = ok / len(chosen)
    passed = None if target is None else rate >= target - 1e-12
    return SLOResult(name, want, f"{rate:.2%} ({ok}/{len(chosen)})", passed)


def _p99(records: Sequence[RequestRecord], target_ms: float | None) -> SLOResult:
    p99 = percentile([r.latency for r in records], 99)
    want = "" if target_ms is None else f"<= {target_ms:g} ms"
    if p99 is None:
        return SLOResult("p99 latency", want, "n/a", None, "no requests")
    passed = None if target_ms is None else p99 * 1000 <= target_ms
    return SLOResult("p99 latency", want, f"{p99 * 1000:.0f} ms", passed)


def _seconds(name: str, times: Sequence[float], target: float | None) -> SLOResult:
    want = "" if target is None else f"<= {target:g} s"
    if not times:
        return SLOResult(name, want, "n/a", None, "no fault on the primary")
    worst = max(times)
    measured = "never" if math.isinf(worst) else f"{worst:.2f} s"
    detail = "per fault: " + ", ".join("never" if math.isinf(t) else f"{t:.2f}" for t in times)
    passed = None if target is None else worst <= target
    return SLOResult(name, want, measured, passed, detail)


def _attempts(counts: dict[tuple[int, str], int], target: int | None) -> SLOResult:
    name = "attempts on a faulted vendor"
    want = "" if target is None else f"<= {target}"
    if not counts:
        return SLOResult(name, want, "n/a", None, "no faults")
    worst = max(counts.values())
    detail = ", ".join(f"faults[{e}] {v}: {n}" for (e, v), n in sorted(counts.items()))
    passed = None if target is None else worst <= target
    return SLOResult(name, want, str(worst), passed, detail)


def _nothing_lost(problems: Counter[str], issued: int, enforced: bool) -> SLOResult:
    want = "every request ends once, complete or a clean error" if enforced else ""
    measured = "nothing lost" if not problems else f"{sum(problems.values())} of {issued} lost"
    detail = ", ".join(f"{kind}: {n}" for kind, n in sorted(problems.items()))
    passed = (not problems) if enforced else None
    return SLOResult("nothing lost", want, measured, passed, detail)


def passed(results: Sequence[SLOResult]) -> bool:
    """The run meets every SLO it sets."""
    return all(r.passed is not False for r in results)
