"""Runtime overrides: what operators changed on top of providers.yaml, and the operations
that change it.

Pure: no I/O, no clock. `apply_changes` checks what an operation names (an alias, a
deployment, a provider) and returns the next document; whether the result is a valid
config is decided by composing it with the file (`compose.py`), the same validation a
file change gets. `prune` drops what a new file no longer has, with a note for each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from pydantic import Field

from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.strict_model import StrictModel

Tier = tuple[str, ...]
Weight = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]


class RouteOverride(StrictModel):
    """`order`: tiers of deployment ids, best first (traffic in a tier is split by weight);
    it replaces the alias's fallbacks from the file. `weights`: deployment id -> weight."""

    order: tuple[Tier, ...] | None = None
    weights: dict[str, Weight] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.order is None and not self.weights


class DeploymentFlags(StrictModel):
    drained: bool = False  # no new requests; in-flight ones finish
    disabled: bool = False
    breaker: Literal["open", "closed"] | None = None  # pinned by an operator

    @property
    def empty(self) -> bool:
        return not self.drained and not self.disabled and self.breaker is None


class Overrides(StrictModel):
    """The whole runtime layer. `revision` grows by one with every accepted change and is
    what compare-and-set in the store checks."""

    revision: int = Field(default=0, ge=0)
    routes: dict[str, RouteOverride] = Field(default_factory=dict)
    deployments: dict[str, DeploymentFlags] = Field(default_factory=dict)
    stopped_providers: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.routes and not self.deployments and not self.stopped_providers

    def canonical(self) -> str:
        """Stable JSON of the content (what the config digest covers)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def flags(self, deployment_id: str) -> DeploymentFlags:
        return self.deployments.get(deployment_id) or DeploymentFlags()


# --------------------------------------------------------------------------- operations


class SetOrder(StrictModel):
    """Replace an alias's fallbacks: entries are "provider/model"; a nested list is a tier."""

    op: Literal["set_order"]
    alias: str
    order: tuple[str | Tier, ...] = Field(min_length=1, max_length=100)


class SetWeights(StrictModel):
    op: Literal["set_weights"]
    alias: str
    weights: dict[str, Weight] = Field(min_length=1)


class ResetRoute(StrictModel):
    """Back to the file's fallbacks and weights for this alias."""

    op: Literal["reset_route"]
    alias: str


class Drain(StrictModel):
    op: Literal["drain"]
    deployment: str


class Disable(StrictModel):
    op: Literal["disable"]
    deployment: str


class Enable(StrictModel):
    """Undo drain and disable."""

    op: Literal["enable"]
    deployment: str


class ForceBreaker(StrictModel):
    op: Literal["force_breaker"]
    deployment: str
    state: Literal["open", "closed", "auto"]


class StopVendor(StrictModel):
    """Emergency stop: every deployment of the provider, in every alias."""

    op: Literal["stop_vendor"]
    provider: str


class StartVendor(StrictModel):
    op: Literal["start_vendor"]
    provider: str


class ResetAll(StrictModel):
    """Drop every runtime override: the file alone decides again."""

    op: Literal["reset_all"]


Operation = Annotated[
    SetOrder
    | SetWeights
    | ResetRoute
    | Drain
    | Disable
    | Enable
    | ForceBreaker
    | StopVendor
    | StartVendor
    | ResetAll,
    Field(discriminator="op"),
]


class ChangeRequest(StrictModel):
    """One atomic change: every operation applies, or none does."""

    version: str | None = None  # the config version the caller read (or send If-Match)
    reason: str = Field(default="", max_length=500)
    changes: tuple[Operation, ...] = Field(min_length=1, max_length=100)


# --------------------------------------------------------------------------- applying


def _file_ids(config: GatewayConfig, alias: str) -> list[str]:
    return [f"{t.provider}/{t.model}" for t in config.routes[alias].fallbacks]


def route_ids(overrides: Overrides, config: GatewayConfig, alias: str) -> list[str]:
    """The deployment ids an alias routes to once `overrides` apply."""
    route = overrides.routes.get(alias)
    if route is not None and route.order is not None:
        return [d for tier in route.order for d in tier]
    return _file_ids(config, alias)


def all_deployments(overrides: Overrides, config: GatewayConfig) -> set[str]:
    return {d for alias in config.routes for d in route_ids(overrides, config, alias)}


def _tiers(order: Iterable[str | Tier]) -> tuple[Tier, ...]:
    return tuple((entry,) if isinstance(entry, str) else tuple(entry) for entry in order)


def _known(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed[:20]) + (", ..." if len(listed) > 20 else "") or "none"


class _Draft:
    """The mutable copy `apply_changes` works on."""

    def __init__(self, current: Overrides) -> None:
        self.routes = dict(current.routes)
        self.deployments = dict(current.deployments)
        self.stopped = set(current.stopped_providers)

    def set_route(self, alias: str, route: RouteOverride) -> None:
        if route.empty:
            self.routes.pop(alias, None)
        else:
            self.routes[alias] = route

    def set_flags(self, deployment: str, **changes: object) -> None:
        flags = self.deployments.get(deployment, DeploymentFlags()).model_copy(update=changes)
        if flags.empty:
            self.deployments.pop(deployment, None)
        else:
            self.deployments[deployment] = flags

    def result(self, revision: int) -> Overrides:
        return Overrides(
            revision=revision,
            routes=self.routes,
            deployments=self.deployments,
            stopped_providers=tuple(sorted(self.stopped)),
        )


def _apply_route_op(
    draft: _Draft, change: SetOrder | SetWeights | ResetRoute, where: str, config: GatewayConfig
) -> list[str]:
    if change.alias not in config.routes:
        return [f"{where}.alias: unknown alias '{change.alias}' (aliases: {_known(config.routes)})"]
    current = draft.routes.get(change.alias, RouteOverride())
    if isinstance(change, ResetRoute):
        draft.set_route(change.alias, RouteOverride())
        return []
    if isinstance(change, SetOrder):
        problems = [
            f"{where}.order[{i}]: an empty tier"
            for i, entry in enumerate(change.order)
            if not isinstance(entry, str) and not entry
        ]
        order = _tiers(change.order)
        ids = {d for tier in order for d in tier}
        weights = {d: w for d, w in current.weights.items() if d in ids}
        draft.set_route(change.alias, RouteOverride(order=order, weights=weights))
        return problems
    ids = set(route_ids(draft.result(0), config, change.alias))
    problems = [
        f"{where}.weights['{d}']: not a deployment of alias '{change.alias}' "
        f"(its deployments: {_known(ids)})"
        for d in change.weights
        if d not in ids
    ]
    draft.set_route(
        change.alias, current.model_copy(update={"weights": {**current.weights, **change.weights}})
    )
    return problems


def _apply_deployment_op(
    draft: _Draft, change: Drain | Disable | Enable | ForceBreaker, where: str, known: set[str]
) -> list[str]:
    if change.deployment not in known and change.deployment not in draft.deployments:
        return [
            f"{where}.deployment: unknown deployment '{change.deployment}' "
            f"(deployments: {_known(known)})"
        ]
    if isinstance(change, Drain):
        draft.set_flags(change.deployment, drained=True)
    elif isinstance(change, Disable):
        draft.set_flags(change.deployment, disabled=True)
    elif isinstance(change, Enable):
        draft.set_flags(change.deployment, drained=False, disabled=False)
    else:
        draft.set_flags(change.deployment, breaker=None if change.state == "auto" else change.state)
    return []


def apply_changes(
    current: Overrides, changes: Sequence[Operation], config: GatewayConfig
) -> Overrides:
    """The next overrides document (revision + 1). Raises ConfigError naming each bad
    operation as `changes[i].field: ...`; `config` is the file's config."""
    draft = _Draft(current)
    problems: list[str] = []
    for i, change in enumerate(changes):
        where = f"changes[{i}]"
        if isinstance(change, SetOrder | SetWeights | ResetRoute):
            problems += _apply_route_op(draft, change, where, config)
        elif isinstance(change, Drain | Disable | Enable | ForceBreaker):
            known = all_deployments(draft.result(0), config)
            problems += _apply_deployment_op(draft, change, where, known)
        elif isinstance(change, StopVendor | StartVendor):
            if change.provider not in config.providers:
                problems.append(
                    f"{where}.provider: unknown provider '{change.provider}' "
                    f"(providers: {_known(config.providers)})"
                )
            elif isinstance(change, StopVendor):
                draft.stopped.add(change.provider)
            else:
                draft.stopped.discard(change.provider)
        else:
            draft = _Draft(Overrides())
    if problems:
        raise ConfigError(problems, "change")
    return draft.result(current.revision + 1)


def prune(overrides: Overrides, config: GatewayConfig) -> tuple[Overrides, list[str]]:
    """Drop the parts of `overrides` that name what the file `config` no longer has."""
    notes: list[str] = []
    routes: dict[str, RouteOverride] = {}
    for alias, route in overrides.routes.items():
        if alias not in config.routes:
            notes.append(f"routes.{alias}: runtime override dropped: the alias is not in the file")
            continue
        order = route.order
        if order is not None:
            kept = tuple(
                tuple(d for d in tier if d.partition("/")[0] in config.providers) for tier in order
            )
            for d in sorted({d for tier in order for d in tier} - {d for t in kept for d in t}):
                notes.append(f"routes.{alias}: '{d}' dropped from the runtime order: no provider")
            order = tuple(tier for tier in kept if tier) or None
        pruned = RouteOverride(order=order, weights=route.weights)
        ids = set(route_ids(Overrides(routes={alias: pruned}), config, alias))
        weights = {d: w for d, w in route.weights.items() if d in ids}
        for d in sorted(set(route.weights) - set(weights)):
            notes.append(f"routes.{alias}: weight for '{d}' dropped: not in the alias any more")
        pruned = RouteOverride(order=order, weights=weights)
        if not pruned.empty:
            routes[alias] = pruned
    stopped = tuple(p for p in overrides.stopped_providers if p in config.providers)
    for provider in sorted(set(overrides.stopped_providers) - set(stopped)):
        notes.append(f"providers.{provider}: emergency stop dropped: not in the file any more")
    pruned_doc = overrides.model_copy(update={"routes": routes, "stopped_providers": stopped})
    return pruned_doc, notes
