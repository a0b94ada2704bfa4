"""File config + runtime overrides -> the effective config, validated like a file.

Overrides edit the parsed YAML (before `${ENV}` substitution) and the result goes through
`config.validate`, so a runtime change meets exactly the checks a file change meets and
the effective config can be written back as YAML that still says `${OPENAI_API_KEY}`.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

from gateway.config import LoadedConfig, validate
from gateway.control.overrides import Overrides, RouteOverride


def digest(file: LoadedConfig, overrides: Overrides) -> str:
    """The version hash: the file's own digest while no override was ever made."""
    if overrides.empty and overrides.revision == 0:
        return file.digest
    text = f"{file.digest}|{overrides.canonical()}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _as_entry(raw_entry: Any) -> dict[str, Any]:
    if isinstance(raw_entry, str):
        provider, _, model = raw_entry.partition("/")
        return {"provider": provider, "model": model}
    return dict(raw_entry)


def _raw_entries(file: LoadedConfig) -> dict[str, dict[str, Any]]:
    """Deployment id -> its raw fallback entry, from the first alias that lists it."""
    entries: dict[str, dict[str, Any]] = {}
    for alias, route in file.config.routes.items():
        raw_fallbacks = file.raw["routes"][alias]["fallbacks"]
        for target, raw_entry in zip(route.fallbacks, raw_fallbacks, strict=True):
            entries.setdefault(f"{target.provider}/{target.model}", _as_entry(raw_entry))
    return entries


def _fallbacks(
    file: LoadedConfig, alias: str, route: RouteOverride, entries: Mapping[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    own = file.config.routes[alias].fallbacks
    raw_own = file.raw["routes"][alias]["fallbacks"]
    by_id = {f"{t.provider}/{t.model}": _as_entry(r) for t, r in zip(own, raw_own, strict=True)}
    if route.order is None:
        fallbacks = [(d, dict(entry)) for d, entry in by_id.items()]
    else:
        fallbacks = []
        for priority, tier in enumerate(route.order):
            for d in tier:
                entry = dict(by_id.get(d) or entries.get(d) or _as_entry(d))
                entry["priority"] = priority  # the runtime order decides
                fallbacks.append((d, entry))
    for d, entry in fallbacks:
        if d in route.weights:
            entry["weight"] = route.weights[d]
    return [entry for _, entry in fallbacks]


def effective_raw(file: LoadedConfig, overrides: Overrides) -> dict[str, Any]:
    """The file's parsed YAML with the route overrides written into it."""
    raw: dict[str, Any] = copy.deepcopy(file.raw)
    entries = _raw_entries(file)
    for alias, route in overrides.routes.items():
        if alias in file.config.routes:
            raw["routes"][alias]["fallbacks"] = _fallbacks(file, alias, route, entries)
    return raw


def compose(
    file: LoadedConfig, overrides: Overrides, env: Mapping[str, str] | None = None
) -> LoadedConfig:
    """The effective config. Raises ConfigError (paths as in a file) when it is invalid."""
    if not overrides.routes:
        loaded = LoadedConfig(file.config, file.disabled, file.digest, file.source, file.raw)
    else:
        loaded = validate(effective_raw(file, overrides), file.source, env)
    loaded.digest = digest(file, overrides)
    return loaded
