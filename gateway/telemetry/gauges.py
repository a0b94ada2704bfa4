"""Instruments read from the live state when metrics are collected (never per request).

Breaker and deployment states are one-hot gauges (`state` label, value 1 for the current
state and 0 for the others), so an alert is a plain comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from gateway.health.report import STATE_NAMES
from gateway.routing import Deployment
from gateway.state import GatewayState
from gateway.telemetry import names as n

BREAKER_STATES = ("closed", "open", "half_open")
DEPLOYMENT_STATES = tuple(dict.fromkeys(STATE_NAMES.values()))
Reading = Callable[[GatewayState], Iterable[Observation]]


def _deployments(state: GatewayState) -> Iterator[Deployment]:
    seen: set[str] = set()
    for route in state.snapshot.routes.values():
        for d in route.deployments:
            if d.id not in seen and d.id in state.runtimes:
                seen.add(d.id)
                yield d


def _ids(d: Deployment) -> dict[str, str]:
    return {n.L_DEPLOYMENT: d.id, n.L_PROVIDER: d.provider}


def breaker_states(state: GatewayState) -> Iterator[Observation]:
    for d in _deployments(state):
        current = state.runtimes[d.id].breaker.state.replace("-", "_")
        for name in BREAKER_STATES:
            yield Observation(int(name == current), {**_ids(d), n.L_STATE: name})


def deployment_states(state: GatewayState) -> Iterator[Observation]:
    now = state.clock()
    for d in _deployments(state):
        current = STATE_NAMES[state.status(d, now).availability]
        for name in DEPLOYMENT_STATES:
            yield Observation(int(name == current), {**_ids(d), n.L_STATE: name})


def alias_available(state: GatewayState) -> Iterator[Observation]:
    now = state.clock()
    for alias, route in state.snapshot.routes.items():
        count = sum(1 for d in route.deployments if state.status(d, now).availability.routable)
        yield Observation(count, {n.L_ALIAS: alias})


def in_flight(state: GatewayState) -> Iterator[Observation]:
    for d in _deployments(state):
        yield Observation(state.runtimes[d.id].in_flight, _ids(d))


def ttft_ewma(state: GatewayState) -> Iterator[Observation]:
    for d in _deployments(state):
        ewma = state.runtimes[d.id].health.ttft_ms.ewma
        if ewma is not None:
            yield Observation(ewma / 1000, _ids(d))


def probes(state: GatewayState) -> Iterator[Observation]:
    for d in _deployments(state):
        probe = state.runtimes[d.id].health.probe
        if probe.total:
            yield Observation(probe.total - probe.failures, {**_ids(d), n.L_RESULT: "ok"})
            yield Observation(probe.failures, {**_ids(d), n.L_RESULT: "failed"})


def ejections(state: GatewayState) -> Iterator[Observation]:
    for d in _deployments(state):
        for cause, count in state.runtimes[d.id].health.ejections.items():
            yield Observation(count, {**_ids(d), n.L_CAUSE: cause})


def reload_rejections(state: GatewayState) -> Iterator[Observation]:
    yield Observation(state.reload_errors)


def fault_injection_enabled(state: GatewayState) -> Iterator[Observation]:
    yield Observation(int(state.fault_injector.enabled))


def fault_injection_rules(state: GatewayState) -> Iterator[Observation]:
    for d in _deployments(state):
        yield Observation(len(state.fault_injector.for_deployment(d.id)), _ids(d))


def fault_injections(state: GatewayState) -> Iterator[Observation]:
    for (deployment, action), count in state.fault_injector.injected.items():
        yield Observation(count, {n.L_DEPLOYMENT: deployment, n.L_ACTION: action})


def register(meter: Meter, get_state: Callable[[], GatewayState | None]) -> None:
    def reading(read: Reading) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            state = get_state()
            return [] if state is None else list(read(state))

        return observe

    gauges = (
        (n.BREAKER_STATE, breaker_states, "", "Circuit breaker state (1 = current)"),
        (n.DEPLOYMENT_STATE, deployment_states, "", "Deployment state as routing sees it"),
        (n.ALIAS_AVAILABLE, alias_available, "", "Deployments of an alias routing may use"),
        (n.DEPLOYMENT_IN_FLIGHT, in_flight, "", "Attempts in flight per deployment"),
        (n.DEPLOYMENT_TTFT_EWMA, ttft_ewma, "s", "EWMA of time to first token"),
        (n.FAULT_INJECTION_ENABLED, fault_injection_enabled, "", "Fault injection layer on (1)"),
        (n.FAULT_INJECTION_RULES, fault_injection_rules, "", "Active fault rules per deployment"),
    )
    for name, read, unit, description in gauges:
        meter.create_observable_gauge(
            name, callbacks=[reading(read)], unit=unit, description=description
        )
    meter.create_observable_counter(
        n.PROBES, callbacks=[reading(probes)], description="Active health probes by result"
    )
    meter.create_observable_counter(
        n.FAULT_INJECTIONS,
        callbacks=[reading(fault_injections)],
        description="Requests the fault injection layer affected (action: abort, delay, ...)",
    )
    meter.create_observable_counter(
        n.EJECTIONS,
        callbacks=[reading(ejections)],
        description="Deployments taken out by health (cause: failure_rate, slow_calls, probe)",
    )
    meter.create_observable_counter(
        n.CONFIG_RELOAD_REJECTIONS,
        callbacks=[reading(reload_rejections)],
        description="Config changes rejected as invalid; the old config kept serving",
    )
