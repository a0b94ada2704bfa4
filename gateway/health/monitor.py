"""HealthMonitor: probes and passive detection, wired to one GatewayState for its lifetime.

In the app's lifespan: pass `on_breaker_change` to the state as a breaker listener,
then `attach(state)`, `start()`, and `stop()` on the way out.
"""

from __future__ import annotations

import random

from gateway.health.passive import PassiveHealth
from gateway.health.prober import Prober
from gateway.state import GatewayState


class HealthMonitor:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._state: GatewayState | None = None
        self.prober: Prober | None = None

    def on_breaker_change(self, deployment_id: str, old: str, new: str) -> None:
        state = self._state
        if state is not None and (runtime := state.runtimes.get(deployment_id)) is not None:
            runtime.health.breaker_since = state.clock()
            if new == "open":
                # The breaker took it out: judge it afresh afterwards, so the failures that
                # tripped the breaker (and its failed half-open trials) do not also eject it
                # for longer than the breaker would.
                runtime.health.window.clear()

    def attach(self, state: GatewayState) -> None:
        """Feed real traffic into health; passive health observes before anyone else."""
        self._state = state
        state.observer.add(PassiveHealth(state), first=True)
        self.prober = Prober(state, self._rng)

    def start(self) -> None:
        if self.prober is not None:
            self.prober.start()

    async def stop(self) -> None:
        if self.prober is not None:
            await self.prober.stop()
        self._state = None
