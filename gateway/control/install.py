"""Installing a config: file + overrides -> GatewayState, in one synchronous step.

Nothing here awaits, so on the event loop a swap is atomic: a request sees the old
snapshot and flags or the new ones, never a mix. `GatewayState.apply` keeps the breakers,
health and cooldowns of deployments whose provider did not change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config import LoadedConfig
from gateway.control.compose import compose
from gateway.control.overrides import Overrides, prune
from gateway.errors import ConfigError
from gateway.state import GatewayState, Snapshot

log = logging.getLogger("gateway.control")


@dataclass(frozen=True, slots=True)
class Active:
    """What is installed: the file, the overrides applied on it, and the result."""

    file: LoadedConfig
    overrides: Overrides  # pruned to what the file has
    effective: LoadedConfig
    snapshot: Snapshot
    notes: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """`counter-digest`, as in the x-gateway-config-version response header."""
        return f"{self.snapshot.version}-{self.effective.digest}"


def apply_flags(state: GatewayState, snapshot: Snapshot, doc: Overrides) -> None:
    """Set every runtime's operator flags from `doc`."""
    providers = {d.id: d.provider for r in snapshot.routes.values() for d in r.deployments}
    stopped = set(doc.stopped_providers)
    for deployment_id, rt in state.runtimes.items():
        flags = doc.flags(deployment_id)
        provider = providers.get(deployment_id) or deployment_id.partition("/")[0]
        rt.drained = flags.drained
        rt.disabled_by_operator = flags.disabled or provider in stopped
        if rt.breaker.forced != flags.breaker:
            rt.breaker.force(flags.breaker)


def swap(
    state: GatewayState,
    file: LoadedConfig,
    doc: Overrides,
    effective: LoadedConfig,
    notes: list[str],
) -> Active:
    """Install an effective config already validated."""
    snapshot = state.apply(effective)
    apply_flags(state, snapshot, doc)
    active = Active(file, doc, effective, snapshot, tuple(notes))
    for note in notes:
        log.warning("config %s: %s", active.version, note)
    return active


def install(
    state: GatewayState, file: LoadedConfig, doc: Overrides, env: Mapping[str, str] | None
) -> Active:
    """Install file + doc. Overrides the file no longer supports are dropped (noted); if
    the rest still does not validate, the file's routes are installed alone (noted)."""
    pruned, notes = prune(doc, file.config)
    try:
        effective = compose(file, pruned, env)
    except ConfigError as exc:
        notes.append("runtime route overrides ignored: " + "; ".join(exc.problems))
        pruned = pruned.model_copy(update={"routes": {}})
        effective = compose(file, pruned, env)
    return swap(state, file, pruned, effective, notes)
