"""GatewayState: the one mutable state object, built at start-up in the app's lifespan.

It holds the active config snapshot, one breaker and one cooldown per deployment, the
adapters and their shared HTTP session, and the retry budget. It is also the health
view routing reads (`status`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from gateway.breakers import DeploymentBreaker, StateListener
from gateway.budget import RetryBudget
from gateway.classify import Policy
from gateway.config import GatewayConfig, LoadedConfig
from gateway.health.record import DeploymentHealth
from gateway.observe import Observers
from gateway.providers.base import Adapter
from gateway.providers.fault_injection import FaultInjector, arm
from gateway.providers.openai_compat import create_session
from gateway.providers.registry import build_adapter
from gateway.routing import Availability, Deployment, Route, Status, build_routes


@dataclass(slots=True)
class DeploymentRuntime:
    """Live state of one deployment, kept across config reloads while it exists."""

    deployment_id: str
    breaker: DeploymentBreaker
    cooldown_until: float = 0.0
    cooldown_why: str = ""
    drained: bool = False
    disabled_by_operator: bool = False
    in_flight: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    health: DeploymentHealth = field(default_factory=DeploymentHealth)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of one config version; a request keeps the one it started with."""

    loaded: LoadedConfig
    routes: dict[str, Route]
    version: int

    @property
    def config(self) -> GatewayConfig:
        return self.loaded.config

    @property
    def policy(self) -> Policy:
        return Policy(
            rate_limit_max_wait=self.config.retry.rate_limit_max_wait,
            rate_limit_cooldown=self.config.retry.rate_limit_cooldown,
            content_policy_failover=False,
        )


class GatewayState:
    def __init__(
        self,
        loaded: LoadedConfig,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        breaker_listeners: tuple[StateListener, ...] = (),
    ) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.session = session
        self.breaker_listeners = breaker_listeners
        self.runtimes: dict[str, DeploymentRuntime] = {}
        self.adapters: dict[str, Adapter] = {}
        self.version = 0
        self.draining = False
        self.observer: Observers = Observers()
        self.fault_injector = FaultInjector(loaded.config.fault_injection, self.rng)
        self.reload_errors = 0  # config changes rejected as invalid (the control plane counts)
        self.last_reload_error: str | None = None  # the latest rejection's message
        self.snapshot = self._build_snapshot(loaded)
        retry = loaded.config.retry
        self.budget = RetryBudget(
            retry.budget_ratio, retry.budget_min_per_second, retry.budget_window
        )

    @classmethod
    def create(cls, loaded: LoadedConfig, **options: object) -> GatewayState:
        """Build the state inside a running event loop (the session needs one)."""
        return cls(loaded, create_session(), **options)  # type: ignore[arg-type]

    def _build_snapshot(self, loaded: LoadedConfig) -> Snapshot:
        self.version += 1
        routes = build_routes(loaded.config)
        before = self.snapshot.config.providers if self.version > 1 else {}
        changed: set[str] = set()  # providers whose settings changed: their state starts over
        for name, provider in loaded.config.providers.items():
            if name in loaded.disabled or (name in self.adapters and before.get(name) == provider):
                continue
            if name in before:
                changed.add(name)
            self.adapters[name] = build_adapter(name, provider, self.session)
        fresh: set[str] = set()
        for route in routes.values():
            for d in route.deployments:
                if d.id not in self.runtimes or (d.provider in changed and d.id not in fresh):
                    fresh.add(d.id)
                    breaker = DeploymentBreaker(
                        d.id, loaded.config.breaker, self.clock, self.breaker_listeners
                    )
                    self.runtimes[d.id] = DeploymentRuntime(d.id, breaker)
        self.fault_injector.config = loaded.config.fault_injection
        arm(self.adapters, self.fault_injector)  # wraps them only while it is enabled
        return Snapshot(loaded, routes, self.version)

    def apply(self, loaded: LoadedConfig) -> Snapshot:
        """Swap in a validated config; runtime state of unchanged deployments is kept."""
        self.snapshot = self._build_snapshot(loaded)
        return self.snapshot

    def runtime(self, deployment: Deployment) -> DeploymentRuntime:
        return self.runtimes[deployment.id]

    # HealthView
    def status(self, deployment: Deployment, now: float) -> Status:
        disabled = self.snapshot.loaded.disabled
        if deployment.provider not in self.adapters or deployment.provider in disabled:
            why = self.snapshot.loaded.disabled.get(deployment.provider, "provider disabled")
            return Status(Availability.DISABLED, None, why)
        rt = self.runtimes[deployment.id]
        if rt.disabled_by_operator:
            return Status(Availability.DISABLED, None, "disabled by an operator")
        if rt.drained:
            return Status(Availability.DRAINED, None, "drained by an operator")
        if rt.cooldown_until > now:
            return Status(Availability.COOLING_DOWN, rt.cooldown_until, rt.cooldown_why)
        status = rt.breaker.status(now)
        if status.availability.routable:
            return rt.health.ejection(now) or status
        return status

    def cool_down(self, deployment: Deployment, seconds: float, why: str) -> None:
        rt = self.runtimes[deployment.id]
        until = self.clock() + seconds
        if until > rt.cooldown_until:
            rt.cooldown_until = until
            rt.cooldown_why = why

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()
        await self.session.close()
