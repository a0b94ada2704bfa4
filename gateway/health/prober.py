"""Runs the active probes: one task per probe target, re-synced when the config changes.

The first probe of a target waits one interval (with jitter, so targets never probe in
step); then each result updates the health of the target's deployments, the ones
routing reads. A flip to unhealthy or back is logged on the `gateway.health` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from gateway.health.config import ProbeConfig
from gateway.health.probes import (
    ProbeResult,
    ProbeTarget,
    probe_completion,
    probe_models,
    probe_targets,
)
from gateway.state import GatewayState

SYNC_SECONDS = 1.0  # how soon a reloaded config's probe targets start
log = logging.getLogger("gateway.health")


def next_delay(config: ProbeConfig, rng: random.Random) -> float:
    """interval * (1 +/- jitter), uniformly."""
    return config.interval * (1.0 + config.jitter * (2.0 * rng.random() - 1.0))


class Prober:
    def __init__(self, state: GatewayState, rng: random.Random) -> None:
        self._state = state
        self._rng = rng
        self._running: dict[str, tuple[ProbeTarget, asyncio.Task[None]]] = {}
        self._version = -1
        self._watcher: asyncio.Task[None] | None = None

    @property
    def targets(self) -> list[ProbeTarget]:
        return [target for target, _ in self._running.values()]

    def start(self) -> None:
        self.sync()
        self._watcher = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        tasks = [task for _, task in self._running.values()]
        if self._watcher is not None:
            tasks.append(self._watcher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()

    def sync(self) -> None:
        """Start probes the config asks for, stop those it no longer does."""
        snapshot = self._state.snapshot
        if snapshot.version == self._version:
            return
        self._version = snapshot.version
        wanted = probe_targets(snapshot.config, snapshot.loaded.disabled)
        for key, (target, task) in list(self._running.items()):
            if wanted.get(key) != target:
                task.cancel()
                del self._running[key]
        for key, target in wanted.items():
            if key not in self._running:
                self._running[key] = (target, asyncio.ensure_future(self._run(target)))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            self.sync()

    async def _run(self, target: ProbeTarget) -> None:
        while True:
            await asyncio.sleep(next_delay(target.config, self._rng))
            result = await self.probe(target)
            self.apply(target, result)

    async def probe(self, target: ProbeTarget) -> ProbeResult:
        state = self._state
        timeout = target.config.timeout
        if target.kind == "completion":
            adapter = state.adapters.get(target.provider)
            if adapter is None:
                return ProbeResult(False, "provider has no adapter (disabled)")
            return await probe_completion(adapter, target.model, timeout)
        provider = state.snapshot.config.providers[target.provider]
        return await probe_models(state.session, provider, timeout)

    def apply(self, target: ProbeTarget, result: ProbeResult) -> None:
        now = self._state.clock()
        for deployment in target.deployments:
            runtime = self._state.runtimes.get(deployment)
            if runtime is None:
                continue
            if runtime.health.record_probe(result.ok, result.error, now, target.config):
                if runtime.health.probe.healthy:
                    log.warning("deployment %s is healthy again: probes pass", deployment)
                else:
                    log.warning(
                        "deployment %s is unhealthy: %s probe failed: %s",
                        deployment,
                        target.kind,
                        result.error,
                    )
