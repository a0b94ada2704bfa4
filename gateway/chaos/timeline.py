"""The fault timeline, pure: a scenario's fault events as windows, and time -> active faults.

An event on vendor '*' becomes one window per vendor; a flapping event becomes one window
per faulty period. Several windows may cover one vendor at once: a `down` wins, other
faults are handed to the simulator in event order (its first match wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.chaos.scenario import ALL_VENDORS, DownFault, FaultAction, FaultEvent
from gateway.simulator import FaultSpec

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Window:
    """`fault` holds on `vendor` from `start` (inclusive) to `end` (exclusive), in seconds
    after the load started; `event` is its index in the scenario's `faults`."""

    vendor: str
    start: float
    end: float
    fault: FaultAction
    event: int

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class VendorFaults:
    down: bool = False
    faults: tuple[FaultSpec, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.down and not self.faults

    @property
    def label(self) -> str | None:
        if self.down:
            return "down"
        return " + ".join(describe(f) for f in self.faults) or None


HEALTHY = VendorFaults()


def windows(
    events: Sequence[FaultEvent], vendors: Sequence[str], time_scale: float = 1.0
) -> tuple[Window, ...]:
    """Every window of every event, times multiplied by `time_scale`, by start time."""
    out: list[Window] = []
    for index, event in enumerate(events):
        targets = vendors if event.vendor == ALL_VENDORS else (event.vendor,)
        for start, end in _periods(event, time_scale):
            out.extend(Window(v, start, end, event.fault, index) for v in targets)
    return tuple(sorted(out, key=lambda w: (w.start, w.event, w.vendor)))


def _periods(event: FaultEvent, scale: float) -> Iterable[tuple[float, float]]:
    start, end = event.at * scale, (event.at + event.duration) * scale
    if event.flap is None:
        yield start, end
        return
    faulty, healthy = event.flap.faulty * scale, event.flap.healthy * scale
    t = start
    while t < end - _EPSILON:
        yield t, min(t + faulty, end)
        t += faulty + healthy


def state_at(
    timeline: Sequence[Window], vendors: Sequence[str], t: float
) -> dict[str, VendorFaults]:
    """What each vendor suffers at time `t`."""
    down: set[str] = set()
    faults: dict[str, list[FaultSpec]] = {v: [] for v in vendors}
    for w in timeline:
        if not w.covers(t):
            continue
        if isinstance(w.fault, DownFault):
            down.add(w.vendor)
        else:
            faults.setdefault(w.vendor, []).append(w.fault)
    return {
        v: VendorFaults(v in down, () if v in down else tuple(faults.get(v, ()))) for v in vendors
    }


def change_times(timeline: Sequence[Window]) -> tuple[float, ...]:
    """The times the timeline may change some vendor's state, ascending."""
    return tuple(sorted({w.start for w in timeline} | {w.end for w in timeline}))


def by_event(timeline: Sequence[Window]) -> Mapping[tuple[int, str], tuple[Window, ...]]:
    """Windows grouped by (event index, vendor): a flapping event's periods together."""
    grouped: dict[tuple[int, str], list[Window]] = {}
    for w in timeline:
        grouped.setdefault((w.event, w.vendor), []).append(w)
    return {key: tuple(ws) for key, ws in grouped.items()}


def describe(fault: FaultAction) -> str:
    """A short label for reports: 'hang', '500 @30%', '429 Retry-After 1s', 'cut after 3'."""
    if isinstance(fault, DownFault):
        return "down"
    label: str = fault.kind
    if fault.kind == "status":
        label = str(fault.status)
    elif fault.kind == "rate_limit":
        wait = fault.retry_after
        label = "429" + (f" Retry-After {wait:g}s" if wait is not None else " no Retry-After")
    elif fault.kind in ("latency", "slow_first_token"):
        label = f"{fault.kind} {fault.delay_ms:g}ms"
    elif fault.kind in ("cut", "stall", "malformed"):
        label = f"{fault.kind} after {fault.after_chunks}"
    if fault.rate < 1.0:
        label += f" @{fault.rate:.0%}"
    if fault.stream is not None:
        label += " (streams)" if fault.stream else " (non-streams)"
    return label
