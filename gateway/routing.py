"""Pure routing: which deployments a request to an alias may try, in which order.

`plan` takes the health view, the random generator and the clock as arguments so it is
tested with plain tables; nothing here does I/O or reads global state.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from gateway.config import GatewayConfig, RouteConfig


@dataclass(frozen=True, slots=True)
class Deployment:
    """One provider + vendor model; the unit a breaker and a cooldown apply to."""

    id: str  # "provider/model"
    provider: str
    model: str
    priority: int
    weight: float
    context_window: int | None


@dataclass(frozen=True, slots=True)
class Route:
    alias: str
    config: RouteConfig
    deployments: tuple[Deployment, ...]


class Availability(Enum):
    AVAILABLE = "available"
    TRIAL = "half_open"  # breaker half-open and its one trial slot is free
    TRIAL_BUSY = "half_open_busy"
    BREAKER_OPEN = "breaker_open"
    COOLING_DOWN = "cooling_down"
    DRAINED = "drained"
    DISABLED = "disabled"
    EJECTED = "ejected"

    @property
    def routable(self) -> bool:
        return self in (Availability.AVAILABLE, Availability.TRIAL)


@dataclass(frozen=True, slots=True)
class Status:
    availability: Availability
    until: float | None = None  # monotonic time the state ends, when known
    why: str = ""
    success_rate: float = 0.0  # EJECTED: recent success rate, to pick the least bad one


class HealthView(Protocol):
    def status(self, deployment: Deployment, now: float) -> Status: ...


@dataclass(frozen=True, slots=True)
class Skipped:
    deployment: Deployment
    status: Status


@dataclass(frozen=True, slots=True)
class Plan:
    candidates: tuple[Deployment, ...]
    skipped: tuple[Skipped, ...]
    demoted: tuple[Skipped, ...] = ()  # ejected, yet tried: nothing healthy was left

    def retry_after(self, now: float, default: float = 1.0) -> float:
        """Seconds until the earliest skipped deployment may be tried again."""
        untils = [s.status.until - now for s in self.skipped if s.status.until is not None]
        return max(0.0, min(untils)) if untils else default


def build_routes(config: GatewayConfig) -> dict[str, Route]:
    routes = {}
    for alias, route in config.routes.items():
        deployments = tuple(
            Deployment(
                id=f"{t.provider}/{t.model}",
                provider=t.provider,
                model=t.model,
                priority=i if t.priority is None else t.priority,
                weight=t.weight,
                context_window=t.context_window,
            )
            for i, t in enumerate(route.fallbacks)
        )
        routes[alias] = Route(alias, route, deployments)
    return routes


def _weighted_order(tier: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    if len(tier) == 1:
        return list(tier)
    # Efraimidis-Spirakis: weighted random order without replacement.
    keyed = [(rng.random() ** (1.0 / d.weight), d) for d in tier]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [d for _, d in keyed]


def order(deployments: Iterable[Deployment], rng: random.Random) -> list[Deployment]:
    """Priority tiers ascending; weighted random order inside a tier."""
    tiers: dict[int, list[Deployment]] = {}
    for d in deployments:
        tiers.setdefault(d.priority, []).append(d)
    ordered: list[Deployment] = []
    for priority in sorted(tiers):
        ordered.extend(_weighted_order(tiers[priority], rng))
    return ordered


def plan(route: Route, view: HealthView, rng: random.Random, now: float) -> Plan:
    candidates = []
    skipped = []
    for d in order(route.deployments, rng):
        status = view.status(d, now)
        if status.availability.routable:
            candidates.append(d)
        else:
            skipped.append(Skipped(d, status))
    ejected = [s for s in skipped if s.status.availability is Availability.EJECTED]
    if candidates or not ejected:
        return Plan(tuple(candidates), tuple(skipped))
    # Never eject every deployment of an alias: try the least bad one rather than refuse.
    least_bad = max(ejected, key=lambda s: s.status.success_rate)  # ties: plan order
    rest = tuple(s for s in skipped if s is not least_bad)
    return Plan((least_bad.deployment,), rest, (least_bad,))


def larger_context(candidates: Sequence[Deployment], than: Deployment) -> tuple[Deployment, ...]:
    """Candidates whose configured context window is larger than `than`'s."""
    floor = than.context_window or 0
    return tuple(d for d in candidates if d.context_window is not None and d.context_window > floor)


def describe(routes: Mapping[str, Route]) -> list[tuple[str, int, str, str, float, str]]:
    """Rows of the routing table: alias, position, deployment, priority tier, weight, window."""
    rows = []
    for alias, route in routes.items():
        for i, d in enumerate(route.deployments):
            window = str(d.context_window) if d.context_window else "-"
            rows.append((alias, i + 1, d.id, str(d.priority), d.weight, window))
    return rows
