"""Sampling what the gateway and the vendors look like while a scenario runs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.chaos.target import GatewayTarget
from gateway.chaos.vendors import VendorControl

# A read that fails (the gateway restarting, an external vendor's control port) costs one
# sample, not the run.
_READ_ERRORS = (RuntimeError, OSError, TimeoutError, aiohttp.ClientError, ValueError, KeyError)


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at time `t` (seconds after the load started).

    breakers   vendor -> the gateway's view: available, breaker_open, half_open, cooling_down…
               (empty when the gateway does not say)
    faults     vendor -> label of the fault it suffers, None when healthy
    requests   vendor -> requests it has received since the run started
    """

    t: float
    breakers: Mapping[str, str]
    faults: Mapping[str, str | None]
    requests: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "breakers": dict(self.breakers),
            "faults": dict(self.faults),
            "requests": dict(self.requests),
        }


class Sampler:
    """Takes a `Sample` every `interval` seconds until cancelled; `on_sample` sees each."""

    def __init__(
        self,
        target: GatewayTarget,
        vendors: Sequence[VendorControl],
        faults: Callable[[], Mapping[str, str | None]],
        clock: Callable[[], float],
        interval: float = 0.25,
    ) -> None:
        self._target = target
        self._vendors = vendors
        self._faults = faults
        self._clock = clock
        self._interval = interval
        self._baseline: dict[str, int] = {}
        self.samples: list[Sample] = []

    async def start(self) -> None:
        """Remember what each vendor had seen before the load (warm-up, earlier runs)."""
        self._baseline = {v.name: await v.requests_seen() for v in self._vendors}

    async def take(self) -> Sample:
        breakers: Mapping[str, str] = {}
        with contextlib.suppress(*_READ_ERRORS):
            breakers = await self._target.breaker_states()
        requests = {}
        for v in self._vendors:
            try:
                requests[v.name] = await v.requests_seen() - self._baseline.get(v.name, 0)
            except _READ_ERRORS:  # keep the last count
                requests[v.name] = self.samples[-1].requests.get(v.name, 0) if self.samples else 0
        sample = Sample(self._clock(), breakers, dict(self._faults()), requests)
        self.samples.append(sample)
        return sample

    async def run(self, on_sample: Callable[[Sample], None]) -> None:
        while True:
            on_sample(await self.take())
            await asyncio.sleep(self._interval)
