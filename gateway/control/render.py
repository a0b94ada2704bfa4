"""The effective config as YAML an SRE can paste back into providers.yaml (secrets
masked, `${ENV}` references kept), and what changes between two configs."""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

from gateway.config import LoadedConfig
from gateway.control.compose import effective_raw
from gateway.control.overrides import Overrides
from gateway.errors import redact

MASK = "<masked>"
_ONE_ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-)?\}$")
_SECRET_HEADER = re.compile(r"(?i)auth|key|token|secret|cookie|signature")


def _mask_secret(value: Any) -> Any:
    """Keep a bare `${NAME}` reference; mask a literal (or a literal default)."""
    if value is None or (isinstance(value, str) and _ONE_ENV_REF.match(value)):
        return value
    return MASK


def _mask_userinfo(value: Any) -> Any:
    """`scheme://user:password@host/...` -> `scheme://<masked>@host/...`."""
    if not isinstance(value, str) or "://" not in value:
        return value
    scheme, _, rest = value.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return value
    return f"{scheme}://{MASK}@{authority.rpartition('@')[2]}{slash}{path}"


def _mask_url(value: Any) -> Any:
    """A secret URL (Redis): a bare `${NAME}` stays, other references are masked."""
    if isinstance(value, str) and "${" in value and not _ONE_ENV_REF.match(value):
        return MASK
    return _mask_userinfo(value)


def _redact_all(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _redact_all(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact_all(v) for v in node]
    return redact(node) if isinstance(node, str) else node


def _mask_provider(provider: dict[str, Any]) -> None:
    if "api_key" in provider:
        provider["api_key"] = _mask_secret(provider["api_key"])
    if "base_url" in provider:
        provider["base_url"] = _mask_userinfo(provider["base_url"])
    headers = provider.get("headers")
    if isinstance(headers, dict):
        for name in headers:
            if _SECRET_HEADER.search(str(name)):
                headers[name] = _mask_secret(headers[name])


def masked(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of parsed providers.yaml with every secret masked."""
    out: dict[str, Any] = _redact_all(raw)
    for provider in (out.get("providers") or {}).values():
        if isinstance(provider, dict):
            _mask_provider(provider)
    state = out.get("state")
    if isinstance(state, dict) and "redis_url" in state:
        state["redis_url"] = _mask_url(state["redis_url"])
    return out


def _runtime_lines(overrides: Overrides) -> list[str]:
    lines = []
    for d, flags in sorted(overrides.deployments.items()):
        what = [w for w, on in (("drained", flags.drained), ("disabled", flags.disabled)) if on]
        if flags.breaker:
            what.append(f"breaker forced {flags.breaker}")
        lines.append(f"#   {d}: {', '.join(what)}")
    for provider in overrides.stopped_providers:
        lines.append(f"#   provider {provider}: emergency stop (every deployment)")
    return lines


def render_yaml(file: LoadedConfig, overrides: Overrides, version: str) -> str:
    """The effective config: the file with runtime route orders and weights written in."""
    head = [
        f"# Effective config of {file.source}, version {version}, "
        f"runtime overrides revision {overrides.revision}.",
        f"# Secrets are shown as {MASK}: keep them in environment variables (${{NAME}}).",
    ]
    runtime = _runtime_lines(overrides)
    if runtime:
        head.append("# Runtime-only state (no file key; `gateway enable` / `start-vendor`):")
        head += runtime
    body = yaml.safe_dump(
        masked(effective_raw(file, overrides)), sort_keys=False, allow_unicode=True, width=100
    )
    return "\n".join(head) + "\n" + body


# --------------------------------------------------------------------------- diffs


def _flatten(node: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _flatten(value, f"{path}.{key}" if path else str(key), out)
    else:
        out[path] = node


def _comparable(loaded: LoadedConfig) -> dict[str, Any]:
    data = _redact_all(loaded.config.model_dump(mode="json"))  # SecretStr dumps masked
    for provider in data["providers"].values():
        _mask_provider(provider)
    for route in data["routes"].values():
        fallbacks = route.pop("fallbacks")
        route["order"] = ", ".join(
            f"{f['provider']}/{f['model']}" + (f" (tier {f['priority']})" if f["priority"] else "")
            for f in fallbacks
        )
        route["deployments"] = {
            f"{f['provider']}/{f['model']}": {
                k: v for k, v in f.items() if k not in ("provider", "model", "priority")
            }
            for f in fallbacks
        }
    data["disabled_providers"] = dict(loaded.disabled)
    flat: dict[str, Any] = {}
    _flatten(data, "", flat)
    return flat


def changes(old: LoadedConfig, new: LoadedConfig) -> list[str]:
    """`key.path: old -> new` for every setting that differs (secrets compared masked)."""
    before, after = _comparable(old), _comparable(new)
    lines = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            lines.append(f"{path}: removed (was {before[path]!r})")
        elif path not in before:
            lines.append(f"{path}: added {after[path]!r}")
        elif before[path] != after[path]:
            lines.append(f"{path}: {before[path]!r} -> {after[path]!r}")
    old_secrets, new_secrets = _secrets(old), _secrets(new)
    listed = {line.partition(": ")[0] for line in lines}
    for path in sorted(set(old_secrets) & set(new_secrets) - listed):
        if old_secrets[path] != new_secrets[path]:
            lines.append(f"{path}: changed (values not shown)")
    return lines


def _secrets(loaded: LoadedConfig) -> dict[str, str | None]:
    """Every secret value by its key path, to tell that one changed without showing it."""
    found: dict[str, str | None] = {}
    for name, p in loaded.config.providers.items():
        found[f"providers.{name}.api_key"] = p.api_key.get_secret_value() if p.api_key else None
        found[f"providers.{name}.base_url"] = p.base_url
        for header, value in p.headers.items():
            if _SECRET_HEADER.search(header):
                found[f"providers.{name}.headers.{header}"] = value
    return found


def text_diff(old_yaml: str, new_yaml: str, old_name: str, new_name: str) -> str:
    return "".join(
        difflib.unified_diff(
            _body(old_yaml), _body(new_yaml), fromfile=old_name, tofile=new_name, n=2
        )
    )


def _body(text: str) -> list[str]:
    return [line for line in text.splitlines(keepends=True) if not line.startswith("# ")]
