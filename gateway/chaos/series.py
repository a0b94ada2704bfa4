"""Per-second series of a run, pure: what the report's table, JSON and plot show.

Requests fall in the second they started in; a second shows a vendor's fault if any
sample in it saw one, and the worst breaker state sampled in it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gateway.chaos.load import RequestRecord
from gateway.chaos.probe import Sample
from gateway.chaos.slo import percentile
from gateway.chaos.target import worst_by_vendor


@dataclass(frozen=True, slots=True)
class Second:
    t: int
    requests: int
    complete: int
    clean_errors: int
    lost: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    served: dict[str, int]  # vendor -> complete answers it started
    faults: dict[str, str | None]  # vendor -> fault label
    breakers: dict[str, str]  # vendor -> worst state

    @property
    def success_rate(self) -> float | None:
        return self.complete / self.requests if self.requests else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["success_rate"] = self.success_rate
        return data


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def per_second(
    records: Sequence[RequestRecord],
    samples: Sequence[Sample],
    vendors: Sequence[str],
    duration: float,
) -> list[Second]:
    count = max(1, math.ceil(duration))
    buckets: list[list[RequestRecord]] = [[] for _ in range(count)]
    for r in records:
        buckets[min(count - 1, max(0, int(r.start)))].append(r)
    by_second: list[list[Sample]] = [[] for _ in range(count)]
    for s in samples:
        if 0 <= s.t < count:
            by_second[int(s.t)].append(s)
    return [_second(t, buckets[t], by_second[t], vendors) for t in range(count)]


def _second(
    t: int, records: Sequence[RequestRecord], samples: Sequence[Sample], vendors: Sequence[str]
) -> Second:
    latencies = [r.latency for r in records]
    served = Counter(r.provider for r in records if r.ok and r.provider)
    faults: dict[str, str | None] = {v: None for v in vendors}
    for s in samples:
        for v, label in s.faults.items():
            faults[v] = faults.get(v) or label
    breakers = worst_by_vendor((v, state) for s in samples for v, state in s.breakers.items())
    return Second(
        t=t,
        requests=len(records),
        complete=sum(r.ok for r in records),
        clean_errors=sum(r.verdict.clean and not r.ok for r in records),
        lost=sum(not r.verdict.clean for r in records),
        p50_ms=_ms(percentile(latencies, 50)),
        p90_ms=_ms(percentile(latencies, 90)),
        p99_ms=_ms(percentile(latencies, 99)),
        served={v: served.get(v, 0) for v in vendors},
        faults=faults,
        breakers=breakers,
    )
