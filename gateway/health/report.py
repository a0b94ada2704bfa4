"""The status and explain reports: read-only views of the live state, as JSON-ready dicts.

Status lists every deployment with its state, why, since when, its last error (redacted
again with every provider's key), success rate, latency and TTFT percentiles and
in-flight count. Explain shows the plan a request to one alias would follow now.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

from gateway.errors import redact
from gateway.providers.openai_compat import provider_secrets
from gateway.routing import Availability, Deployment, Route, Status, plan
from gateway.state import DeploymentRuntime, GatewayState

STATE_NAMES = {
    Availability.AVAILABLE: "healthy",
    Availability.TRIAL: "half_open",
    Availability.TRIAL_BUSY: "half_open",
    Availability.BREAKER_OPEN: "breaker_open",
    Availability.COOLING_DOWN: "cooling_down",
    Availability.DRAINED: "drained",
    Availability.DISABLED: "disabled",
    Availability.EJECTED: "ejected",
}
QUANTILES = (0.5, 0.9, 0.99)


class Clocks:
    """Turns the state's monotonic times into wall-clock ISO timestamps."""

    def __init__(self, monotonic_now: float, wall_now: float) -> None:
        self.now = monotonic_now
        self._offset = wall_now - monotonic_now

    def iso(self, monotonic: float | None) -> str | None:
        if monotonic is None:
            return None
        return datetime.fromtimestamp(monotonic + self._offset, UTC).isoformat(timespec="seconds")

    def seconds_until(self, monotonic: float | None) -> float | None:
        return None if monotonic is None else round(max(0.0, monotonic - self.now), 3)


def clocks_for(state: GatewayState) -> Clocks:
    return Clocks(state.clock(), time.time())


def _since(status: Status, rt: DeploymentRuntime) -> float | None:
    health = rt.health
    if status.availability is Availability.EJECTED:
        return health.probe.since if not health.probe.healthy else health.ejected_since
    if status.availability in (Availability.BREAKER_OPEN, Availability.TRIAL):
        return health.breaker_since
    if status.availability is Availability.AVAILABLE:
        changes = [health.breaker_since, health.probe.since, health.ejected_since]
        known = [t for t in changes if t is not None]
        return max(known) if known else None
    return None


def deployment_report(
    state: GatewayState, d: Deployment, aliases: list[str], clocks: Clocks
) -> dict[str, Any]:
    rt = state.runtimes[d.id]
    health = rt.health
    status = state.status(d, clocks.now)
    secrets = _secrets(state)
    last = health.last_error
    rate = health.success_rate
    return {
        "deployment": d.id,
        "provider": d.provider,
        "model": d.model,
        "aliases": aliases,
        "state": STATE_NAMES[status.availability],
        "why": redact(status.why, secrets),
        "since": clocks.iso(_since(status, rt)),
        "until": clocks.iso(status.until),
        "retry_in_seconds": clocks.seconds_until(status.until),
        "in_flight": rt.in_flight,
        "fault_injection": state.fault_injector.for_deployment(d.id),  # active rules
        "calls": health.calls,
        "failures": health.failures,
        "neutral": health.neutral,
        "success_rate": None if rate is None else round(rate, 4),
        "last_error": None
        if last is None
        else {
            "at": clocks.iso(last.at),
            "reason": last.reason,
            "message": redact(last.message, secrets)[:300],
        },
        "latency_ms": health.latency_ms.percentiles(*QUANTILES),
        "ttft_ms": {
            **health.ttft_ms.percentiles(*QUANTILES),
            "ewma": None if health.ttft_ms.ewma is None else round(health.ttft_ms.ewma, 2),
        },
        **_windows(rt, clocks, secrets),
    }


def _windows(rt: DeploymentRuntime, clocks: Clocks, secrets: list[str]) -> dict[str, Any]:
    """What the breaker, outlier detection and probes are judging the deployment on."""
    health = rt.health
    failures, calls = rt.breaker.failure_rate()
    return {
        "breaker": {
            "state": rt.breaker.state,
            "window_failures": failures,
            "window_calls": calls,
            "transitions": rt.breaker.transitions,
        },
        "outlier": {
            "window_calls": health.window.calls,
            "window_failures": health.window.failures,
            "window_slow": health.window.slow,
            "ejections": dict(health.ejections),
        },
        "probe": {
            "healthy": health.probe.healthy,
            "probes": health.probe.total,
            "failures": health.probe.failures,
            "failing_in_a_row": health.probe.fail_streak,
            "last_at": clocks.iso(health.probe.last_at),
            "last_error": redact(health.probe.last_error, secrets) or None,
        },
    }


def status_report(state: GatewayState) -> dict[str, Any]:
    clocks = clocks_for(state)
    snapshot = state.snapshot
    deployments: dict[str, Deployment] = {}
    aliases: dict[str, list[str]] = {}
    for alias, route in snapshot.routes.items():
        for d in route.deployments:
            deployments.setdefault(d.id, d)
            aliases.setdefault(d.id, []).append(alias)
    rows = [deployment_report(state, d, aliases[d.id], clocks) for d in deployments.values()]
    routable = {
        alias: sum(
            1 for d in route.deployments if state.status(d, clocks.now).availability.routable
        )
        for alias, route in snapshot.routes.items()
    }
    return {
        "config_version": f"{snapshot.version}-{snapshot.loaded.digest}",
        "config_reload": {
            "rejections": state.reload_errors,
            "last_error": state.last_reload_error,
        },
        "draining": state.draining,
        "fault_injection": state.fault_injector.summary(),
        "generated_at": clocks.iso(clocks.now),
        "aliases": {
            alias: {"deployments": len(route.deployments), "routable": routable[alias]}
            for alias, route in snapshot.routes.items()
        },
        "deployments": rows,
    }


def explain_report(state: GatewayState, route: Route) -> dict[str, Any]:
    """Every deployment of `route` in priority order, with what a request would do with it."""
    clocks = clocks_for(state)
    secrets = _secrets(state)
    # Inside a tier the order is a weighted draw per request: show the shares, and one
    # draw (fixed seed, so two calls agree) as `will_try`.
    result = plan(route, state, random.Random(0), clocks.now)
    verdicts = {d.id: ("candidate", state.status(d, clocks.now)) for d in result.candidates}
    verdicts.update({s.deployment.id: ("demoted", s.status) for s in result.demoted})
    verdicts.update({s.deployment.id: ("skipped", s.status) for s in result.skipped})
    tier_weight: dict[int, float] = {}
    for d in route.deployments:
        tier_weight[d.priority] = tier_weight.get(d.priority, 0.0) + d.weight
    steps = []
    for d in sorted(route.deployments, key=lambda d: d.priority):  # stable: config order
        verdict, status = verdicts[d.id]
        share = d.weight / tier_weight[d.priority]
        steps.append(
            {
                "deployment": d.id,
                "verdict": verdict,
                "tier": d.priority,
                "weight": d.weight,
                "tier_share": round(share, 4),
                "state": STATE_NAMES[status.availability],
                "why": _why(d, verdict, status, share, secrets),
                "retry_in_seconds": clocks.seconds_until(status.until),
            }
        )
    return {
        "alias": route.alias,
        "timeout_seconds": route.config.timeout,
        "will_try": [d.id for d in result.candidates],
        "outcome": _outcome(result.candidates, result.retry_after(clocks.now)),
        "steps": steps,
    }


def _why(d: Deployment, verdict: str, status: Status, share: float, secrets: list[str]) -> str:
    why = redact(status.why, secrets) or status.availability.value
    if verdict == "demoted":
        return f"every deployment is unhealthy: tried as the least bad one ({why})"
    if verdict == "skipped":
        return why
    place = f"tier {d.priority}"
    if share < 1.0:
        place += f", picked first for {share:.0%} of requests within its tier"
    if status.availability is Availability.TRIAL:
        return f"breaker half-open: the next request here is its trial; {place}"
    return f"healthy; {place}"


def _outcome(candidates: tuple[Deployment, ...], retry_after: float) -> str:
    if candidates:
        return "tried in the order of will_try until one answers"
    wait = max(1, round(retry_after))
    return f"refused with 503: no deployment is available (Retry-After {wait}s)"


def _secrets(state: GatewayState) -> list[str]:
    secrets: list[str] = []
    for provider in state.snapshot.config.providers.values():
        secrets += provider_secrets(provider)
    return secrets
