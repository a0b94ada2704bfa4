"""Plays a fault timeline on the vendors: at each change time, apply what `state_at` says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from gateway.chaos.timeline import HEALTHY, VendorFaults, Window, change_times, state_at
from gateway.chaos.vendors import VendorControl


class FaultPlayer:
    def __init__(
        self,
        timeline: Sequence[Window],
        vendors: Mapping[str, VendorControl],
        clock: Callable[[], float],
    ) -> None:
        self._timeline = timeline
        self._vendors = vendors
        self._clock = clock
        self.current: dict[str, VendorFaults] = {name: HEALTHY for name in vendors}
        self.applied: list[tuple[float, str, str | None]] = []  # (when, vendor, label)

    def labels(self) -> dict[str, str | None]:
        return {name: faults.label for name, faults in self.current.items()}

    async def run(self) -> None:
        """Apply every change on time; returns after the last one (cancel to stop early)."""
        for t in (0.0, *change_times(self._timeline)):
            delay = t - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.apply_at(t)

    async def apply_at(self, t: float) -> None:
        desired = state_at(self._timeline, list(self._vendors), t)
        for name, faults in desired.items():
            if faults != self.current[name]:
                await self._vendors[name].apply(faults)
                self.current[name] = faults
                self.applied.append((self._clock(), name, faults.label))
