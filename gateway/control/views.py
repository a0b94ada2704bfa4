"""Read-only views for the admin API and the CLI: aliases with their deployments' live
state, and the control plane's own status (version, reloads, persistence)."""

from __future__ import annotations

from typing import Any

from gateway.config import load_text
from gateway.control.compose import compose
from gateway.control.lines import with_lines
from gateway.control.overrides import prune
from gateway.control.plane import ControlPlane, ReloadOutcome
from gateway.control.render import changes, render_yaml, text_diff
from gateway.errors import ConfigError
from gateway.routing import Deployment
from gateway.state import GatewayState


def _deployment(
    state: GatewayState, plane: ControlPlane, d: Deployment, position: int, now: float
) -> dict[str, Any]:
    rt = state.runtimes[d.id]
    status = state.status(d, now)
    failures, calls = rt.breaker.failure_rate()
    doc = plane.active.overrides
    return {
        "deployment": d.id,
        "provider": d.provider,
        "model": d.model,
        "position": position,
        "tier": d.priority,
        "weight": d.weight,
        "state": status.availability.value,
        "why": status.why,
        "breaker": rt.breaker.state,
        "breaker_forced": rt.breaker.forced,
        "drained": rt.drained,
        "disabled": doc.flags(d.id).disabled,
        "vendor_stopped": d.provider in doc.stopped_providers,
        "in_flight": rt.in_flight,
        "window_failures": failures,
        "window_calls": calls,
        "cooldown_seconds": round(max(0.0, rt.cooldown_until - now), 3),
    }


def routes_view(plane: ControlPlane) -> dict[str, Any]:
    state = plane.state
    active = plane.active
    now = state.clock()
    aliases = []
    for alias, route in active.snapshot.routes.items():
        deployments = [
            _deployment(state, plane, d, i + 1, now) for i, d in enumerate(route.deployments)
        ]
        aliases.append(
            {
                "alias": alias,
                "overridden": alias in active.overrides.routes,
                "routable": sum(1 for d in deployments if d["state"] in ("available", "half_open")),
                "deployments": deployments,
            }
        )
    return {"version": active.version, "revision": active.overrides.revision, "aliases": aliases}


def _reload(outcome: ReloadOutcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {
        "at": outcome.at,
        "trigger": outcome.trigger,
        "outcome": outcome.outcome,
        "version": outcome.version,
        "problems": outcome.problems,
        "notes": outcome.notes,
    }


def _persistence(plane: ControlPlane) -> dict[str, Any]:
    health = plane.store_health
    revision = plane.active.overrides.revision
    note = health.note
    if not health.healthy:
        note = (
            f"unreachable since {health.since}: serving the last known overrides "
            f"(revision {revision}); changes are refused until it is back"
        )
    return {
        "kind": plane.store.kind,
        "location": plane.store.describe(),
        "shared": plane.store.shared,
        "healthy": health.healthy,
        "error": health.error,
        "since": health.since,
        "last_sync": health.last_sync,
        "note": note,
    }


def status_view(plane: ControlPlane) -> dict[str, Any]:
    active = plane.active
    state = plane.state
    return {
        "version": active.version,
        "counter": active.snapshot.version,
        "digest": active.effective.digest,
        "replica": plane.replica,
        "file": {
            "path": str(plane.config_path) if plane.config_path else None,
            "digest": active.file.digest,
            "watching": plane.watching,
            "watch_error": plane.watch_error,
        },
        "reload": {
            "last": _reload(plane.last_reload),
            "rejections": state.reload_errors,
            "last_error": state.last_reload_error,
        },
        "overrides": {
            **active.overrides.model_dump(mode="json"),
            "notes": list(active.notes),
        },
        "persistence": _persistence(plane),
    }


def preview(plane: ControlPlane, text: str, name: str = "proposed") -> dict[str, Any]:
    """What installing `text` as providers.yaml would change (nothing is installed)."""
    active = plane.active
    invalid: dict[str, Any] = {"valid": False, "changes": [], "notes": [], "diff": ""}
    try:
        file = load_text(text, name)
    except ConfigError as exc:
        return {**invalid, "problems": with_lines(exc.problems, text)}
    doc, notes = prune(active.overrides, file.config)
    try:
        effective = compose(file, doc)
    except ConfigError as exc:
        problems = [f"with the runtime overrides: {p}" for p in exc.problems]
        return {**invalid, "problems": problems}
    for alias, route in doc.routes.items():
        if (
            route.order is not None
            and active.file.config.routes.get(alias) != (file.config.routes[alias])
        ):
            notes.append(
                f"routes.{alias}: a runtime order is in effect and hides the file's fallbacks; "
                f"`gateway route reset {alias}` hands the alias back to the file"
            )
    old_yaml = render_yaml(active.file, active.overrides, active.version)
    new_yaml = render_yaml(file, doc, "proposed")
    return {
        "valid": True,
        "problems": [],
        "changes": changes(active.effective, effective),
        "notes": notes,
        "diff": text_diff(old_yaml, new_yaml, f"running ({active.version})", name),
    }
