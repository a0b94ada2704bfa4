"""providers.yaml: typed models, loading with `${ENV}` substitution, two-phase validation.

Phase one checks shape and types (pydantic, `extra="forbid"`); phase two checks references
between sections (a route naming an unknown provider, a duplicate deployment). Every
problem is reported as `key.path: message`, with the YAML line where known.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator

from gateway.control.settings import AdminConfig, StateConfig
from gateway.errors import ConfigError
from gateway.health.config import HealthConfig, ProbeConfig, probe_problems
from gateway.providers.fault_injection import FaultInjectionConfig
from gateway.strict_model import StrictModel
from gateway.telemetry.config import CostConfig, TelemetryConfig

OPENAI_COMPATIBLE_KINDS = frozenset(
    {"openai", "azure", "vllm", "ollama", "groq", "mistral", "together", "openai_compatible"}
)
LITELLM_KINDS = frozenset({"anthropic", "bedrock", "vertex_ai", "cohere", "gemini"})
ProviderKind = Literal[
    "openai",
    "azure",
    "vllm",
    "ollama",
    "groq",
    "mistral",
    "together",
    "openai_compatible",
    "anthropic",
    "bedrock",
    "vertex_ai",
    "cohere",
    "gemini",
]
RescueStrategy = Literal["continuation", "splice"]

# Vendors whose chat API continues a trailing assistant message (prefill).
_PREFILL_KINDS = frozenset({"anthropic", "vllm", "ollama", "bedrock"})
# Vendors known to accept `stream_options.include_usage` (some servers reject the field);
# for the kinds litellm translates, litellm takes the option itself.
_STREAM_USAGE_KINDS = frozenset({"openai", "vllm"}) | LITELLM_KINDS
_DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "together": "https://api.together.xyz/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
}


class Timeouts(StrictModel):
    connect: float = Field(default=2.0, gt=0)
    first_token: float = Field(
        default=20.0, gt=0, description="streaming TTFT; non-streaming: whole reply"
    )
    idle: float = Field(default=15.0, gt=0, description="longest silence between stream chunks")


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class RetryConfig(StrictModel):
    max_attempts: int = Field(default=4, ge=1, le=20)
    same_deployment_retries: int = Field(default=1, ge=0, le=5)
    backoff_base: float = Field(default=0.1, ge=0)
    backoff_max: float = Field(default=2.0, ge=0)
    budget_ratio: float = Field(default=0.2, ge=0, le=10)
    budget_min_per_second: float = Field(default=10.0, ge=0)
    budget_window: float = Field(default=10.0, gt=0)
    rate_limit_max_wait: float = Field(default=3.0, ge=0)
    rate_limit_cooldown: float = Field(default=1.0, ge=0, description="cool-down after a bare 429")


class BreakerConfig(StrictModel):
    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.25, gt=0, le=1)
    window_seconds: float = Field(default=10.0, gt=0)
    min_calls: int = Field(default=10, ge=1)
    open_seconds: float = Field(default=5.0, gt=0)
    max_open_seconds: float = Field(default=120.0, gt=0)


class Capabilities(StrictModel):
    """How a broken stream may be rescued on this provider (defaults by vendor kind)."""

    prefill: bool | None = None
    rescue: tuple[RescueStrategy, ...] | None = None
    # Ask for token usage on every stream, so tokens and cost are counted even when the
    # client did not ask; the usage chunk is then not passed on to that client.
    stream_usage: bool | None = None


class ProviderConfig(StrictModel):
    kind: ProviderKind
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: Timeouts | None = None
    capabilities: Capabilities = Capabilities()
    probe: ProbeConfig | None = None  # keys set here override health.probe

    @property
    def openai_compatible(self) -> bool:
        return self.kind in OPENAI_COMPATIBLE_KINDS

    @property
    def accepts_prefill(self) -> bool:
        if self.capabilities.prefill is not None:
            return self.capabilities.prefill
        return self.kind in _PREFILL_KINDS

    @property
    def asks_stream_usage(self) -> bool:
        if self.capabilities.stream_usage is not None:
            return self.capabilities.stream_usage
        return self.kind in _STREAM_USAGE_KINDS

    @property
    def rescue_strategies(self) -> tuple[RescueStrategy, ...]:
        if self.capabilities.rescue is not None:
            return self.capabilities.rescue
        return ("continuation", "splice") if self.accepts_prefill else ("splice",)

    @property
    def resolved_base_url(self) -> str | None:
        return self.base_url or _DEFAULT_BASE_URLS.get(self.kind)


class TargetConfig(StrictModel):
    provider: str
    model: str
    priority: int | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, gt=0)
    context_window: int | None = Field(default=None, gt=0)
    cost: CostConfig | None = None  # overrides litellm's price map


class RouteConfig(StrictModel):
    fallbacks: tuple[TargetConfig, ...] = Field(min_length=1)
    timeout: float = Field(default=60.0, gt=0, description="deadline over all attempts")
    stream_rescue: bool = True
    content_policy: Literal["return", "failover"] = "return"

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        # "provider/model" is shorthand for {provider, model}
        if isinstance(value, list):
            return [_target_from_str(v) if isinstance(v, str) else v for v in value]
        return value


def _target_from_str(text: str) -> dict[str, str]:
    provider, _, model = text.partition("/")
    return {"provider": provider, "model": model}


class GatewayConfig(StrictModel):
    server: ServerConfig = ServerConfig()
    timeouts: Timeouts = Timeouts()
    retry: RetryConfig = RetryConfig()
    breaker: BreakerConfig = BreakerConfig()
    fault_injection: FaultInjectionConfig = FaultInjectionConfig()
    providers: dict[str, ProviderConfig]
    routes: dict[str, RouteConfig]
    health: HealthConfig = HealthConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    admin: AdminConfig = AdminConfig()
    state: StateConfig = StateConfig()

    def timeouts_for(self, provider: str) -> Timeouts:
        return self.providers[provider].timeouts or self.timeouts


class LoadedConfig:
    """A validated config plus what loading learned: disabled providers and a version hash."""

    def __init__(
        self,
        config: GatewayConfig,
        disabled: Mapping[str, str],
        digest: str,
        source: str,
        raw: Any = None,
    ) -> None:
        self.config = config
        self.disabled = dict(disabled)  # provider -> why (names the env variable)
        self.digest = digest
        self.source = source
        self.raw = raw  # the parsed YAML before ${ENV} substitution (runtime overrides edit it)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """Rejects duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConfigError(
                [
                    f"line {key_node.start_mark.line + 1}: duplicate key '{key}' "
                    f"(first defined on line {seen[key] + 1})"
                ]
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(exc.problems, source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}YAML syntax error: {problem}"], source) from None


def _substitute_env(node: Any, path: str, env: Mapping[str, str], missing: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: _substitute_env(v, f"{path}.{k}" if path else str(k), env, missing)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute_env(v, f"{path}[{i}]", env, missing) for i, v in enumerate(node)]
    if isinstance(node, str) and "$" in node:

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing[path] = name
            return ""

        return _ENV_REF.sub(replace, node)
    return node


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shape_errors(exc: ValidationError) -> list[str]:
    errors = exc.errors()
    problems = []
    for err in errors:
        if err["type"] == "too_short" and any(
            len(e["loc"]) > len(err["loc"]) and e["loc"][: len(err["loc"])] == err["loc"]
            for e in errors
        ):
            continue  # pydantic counts only the items that validated: the items' errors say it
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check spelling; see providers.yaml for the accepted keys)"
        problems.append(f"{_location(loc) or '(top level)'}: {msg}")
    return problems


def _reference_errors(config: GatewayConfig) -> list[str]:
    problems = []
    for alias, route in config.routes.items():
        seen: set[tuple[str, str]] = set()
        for i, target in enumerate(route.fallbacks):
            where = f"routes.{alias}.fallbacks[{i}]"
            if target.provider not in config.providers:
                known = ", ".join(sorted(config.providers)) or "none"
                problems.append(f"{where}: unknown provider '{target.provider}' (known: {known})")
            if not target.model:
                problems.append(f"{where}: model is empty")
            if (target.provider, target.model) in seen:
                problems.append(f"{where}: '{target.provider}/{target.model}' listed twice")
            seen.add((target.provider, target.model))
    for name, provider in config.providers.items():
        if provider.resolved_base_url is None and provider.kind in OPENAI_COMPATIBLE_KINDS:
            problems.append(f"providers.{name}.base_url: required for kind '{provider.kind}'")
    return problems


def validate(raw: Any, source: str, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Validate parsed YAML; raise ConfigError naming every problem's key path."""
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping with 'providers' and 'routes'"], source)
    missing: dict[str, str] = {}
    data = _substitute_env(raw, "", os.environ if env is None else env, missing)
    disabled: dict[str, str] = {}
    problems = []
    for path, var in missing.items():
        parts = path.split(".")
        if len(parts) == 3 and parts[0] == "providers" and parts[2] == "api_key":
            disabled[parts[1]] = f"environment variable {var} is not set"
            data["providers"][parts[1]]["api_key"] = None
        else:
            problems.append(
                f"{path}: environment variable {var} is not set "
                f"(export it, or write ${{{var}:-default}})"
            )
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + _shape_errors(exc), source) from None
    problems += _reference_errors(config)
    problems += probe_problems(config.health, config.providers)
    if problems:
        raise ConfigError(problems, source)
    digest = hashlib.sha256(repr(raw).encode()).hexdigest()[:12]
    return LoadedConfig(config, disabled, digest, source, raw)


def load_text(
    text: str, source: str = "<string>", env: Mapping[str, str] | None = None
) -> LoadedConfig:
    return validate(parse_yaml(text, source), source, env)


def load_file(path: str | Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            ["file not found (pass --config PATH, or run `gateway demo` to try it without one)"],
            str(p),
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror}"], str(p)) from None
    return load_text(text, str(p), env)
