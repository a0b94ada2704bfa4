"""Scenario files: typed models, loading, and two-phase validation with path-named errors.

Phase one checks shape and types (pydantic, `extra="forbid"`); phase two checks references
(a fault naming an unknown vendor, a load model that is not a route) and validates the
`gateway:` section as the providers.yaml it becomes. Every problem reads `key.path: message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError, model_validator

from gateway.config import parse_yaml, validate
from gateway.errors import ConfigError
from gateway.simulator import FaultKind, FaultSpec
from gateway.strict_model import StrictModel

ProfileName = Literal["short", "full"]
ALL_VENDORS = "*"
_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
_TAGS = frozenset([*get_args(FaultKind), "down"])
_SKIPPED_LOC = _TAGS | {"[key]"}


class VendorDecl(StrictModel):
    """A simulated vendor. `url` marks an external simulator the tool does not start (its
    faults are set over its `/_sim` routes); `port` 0 picks a free port."""

    name: str = Field(pattern=_NAME)
    dialect: Literal["openai", "anthropic"] = "openai"
    port: int = Field(default=0, ge=0, le=65535)
    models: tuple[str, ...] = Field(default=("sim",), min_length=1)
    chunks: int = Field(default=8, ge=1)
    chunk_delay_ms: float = Field(default=0.0, ge=0)
    url: str | None = None
    provider: dict[str, Any] = Field(default_factory=dict, description="extra provider keys")


class DownFault(StrictModel):
    """Hard down: the vendor's port is closed, so connections are refused."""

    kind: Literal["down"]


FaultAction = Annotated[FaultSpec | DownFault, Field(discriminator="kind")]


class Flap(StrictModel):
    """Flapping: the fault holds for `faulty` seconds, then `healthy` seconds, repeatedly."""

    faulty: float = Field(gt=0)
    healthy: float = Field(gt=0)


class FaultEvent(StrictModel):
    vendor: str = Field(description="a vendor name, or '*' for every vendor")
    at: float = Field(ge=0, description="seconds after the load starts")
    duration: float = Field(gt=0)
    fault: FaultAction
    flap: Flap | None = None


class LoadSpec(StrictModel):
    model: str | None = Field(default=None, description="route alias; default: the first")
    rate: float = Field(default=30.0, gt=0, le=5000, description="requests per second")
    concurrency: int = Field(default=16, ge=1, le=2000)
    duration: float = Field(default=8.0, gt=0, le=86400)
    stream_share: float = Field(default=0.5, ge=0, le=1)
    prompt_words: tuple[int, int] = (4, 40)
    request_timeout: float = Field(default=15.0, gt=0, description="longer is a hang")
    seed: int = 0

    @model_validator(mode="after")
    def _words_in_order(self) -> LoadSpec:
        low, high = self.prompt_words
        if not 1 <= low <= high <= 4000:
            raise ValueError("prompt_words must be [min, max] with 1 <= min <= max <= 4000")
        return self


class SLO(StrictModel):
    """Targets; a target left out is reported but not enforced."""

    success_rate: float | None = Field(default=None, ge=0, le=1)
    non_stream_success_rate: float | None = Field(default=None, ge=0, le=1)
    stream_success_rate: float | None = Field(default=None, ge=0, le=1)
    p99_latency_ms: float | None = Field(default=None, gt=0)
    failover_within_s: float | None = Field(default=None, gt=0)
    return_to_primary_within_s: float | None = Field(default=None, gt=0)
    max_attempts_on_dead_vendor: int | None = Field(default=None, ge=0)
    nothing_lost: bool = True


class Profile(StrictModel):
    """`short` runs the file's timeline as written; `full` stretches it for a soak."""

    time_scale: float = Field(default=1.0, gt=0, le=1000)
    rate_scale: float = Field(default=1.0, gt=0, le=100)


DEFAULT_PROFILES: dict[ProfileName, Profile] = {
    "short": Profile(),
    "full": Profile(time_scale=6.0, rate_scale=2.0),
}


class Scenario(StrictModel):
    name: str = Field(pattern=_NAME)
    description: str = ""
    vendors: tuple[VendorDecl, ...] = Field(min_length=1)
    gateway: dict[str, Any] = Field(description="providers.yaml without `providers`")
    load: LoadSpec = LoadSpec()
    faults: tuple[FaultEvent, ...] = ()
    slo: SLO = SLO()
    profiles: dict[ProfileName, Profile] = Field(default_factory=dict)

    @property
    def vendor_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.vendors)

    @property
    def route(self) -> str:
        """The route alias the load uses."""
        return self.load.model or next(iter(self.gateway["routes"]))

    @property
    def primary(self) -> str:
        """The vendor of the route's first fallback."""
        first = self.gateway["routes"][self.route]["fallbacks"][0]
        text = first if isinstance(first, str) else str(first["provider"])
        return text.partition("/")[0]

    def profile(self, name: ProfileName) -> Profile:
        return self.profiles.get(name) or DEFAULT_PROFILES[name]


def provider_entry(vendor: VendorDecl, base_url: str) -> dict[str, Any]:
    """The providers.yaml entry that points the gateway at `vendor` (root URL given)."""
    if vendor.dialect == "anthropic":
        entry: dict[str, Any] = {"kind": "anthropic", "base_url": base_url, "api_key": "chaos"}
    else:
        entry = {"kind": "openai_compatible", "base_url": base_url + "/v1"}
    return {**entry, **vendor.provider}


def gateway_config(scenario: Scenario, urls: Mapping[str, str]) -> dict[str, Any]:
    """The gateway's providers.yaml as data: the scenario's section plus its vendors."""
    providers = {v.name: provider_entry(v, urls[v.name]) for v in scenario.vendors}
    return {**scenario.gateway, "providers": providers}


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shape_errors(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        # A discriminated union adds the chosen tag to the path, a bad dict key "[key]".
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _SKIPPED_LOC))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check spelling; see the scenario reference in README)"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown fault kind; use one of: {', '.join(sorted(_TAGS))}"
        problems.append(f"{_location(loc) or '(top level)'}: {msg}")
    return problems


def _reference_errors(scenario: Scenario) -> list[str]:
    problems = []
    names = scenario.vendor_names
    if len(set(names)) != len(names):
        problems.append("vendors: vendor names must be unique")
    external = {v.name for v in scenario.vendors if v.url is not None}
    for i, event in enumerate(scenario.faults):
        where = f"faults[{i}]"
        if event.vendor != ALL_VENDORS and event.vendor not in names:
            problems.append(
                f"{where}.vendor: unknown vendor '{event.vendor}' "
                f"(known: {', '.join(names)}, or '*' for all)"
            )
        hit = set(names) if event.vendor == ALL_VENDORS else {event.vendor}
        if isinstance(event.fault, DownFault) and hit & external:
            problems.append(
                f"{where}.fault: 'down' needs a vendor this tool starts; "
                f"{', '.join(sorted(hit & external))} is external (has a url)"
            )
        if event.at >= scenario.load.duration:
            problems.append(
                f"{where}.at: starts at {event.at:g}s, after the load ends "
                f"(load.duration {scenario.load.duration:g}s)"
            )
    return problems + _gateway_errors(scenario)


def _gateway_errors(scenario: Scenario) -> list[str]:
    section = scenario.gateway
    if "providers" in section or "server" in section:
        return ["gateway: leave out 'providers' and 'server'; the tool fills them in"]
    routes = section.get("routes")
    if not isinstance(routes, dict) or not routes:
        return ["gateway.routes: required: at least one route over the scenario's vendors"]
    urls = {v.name: v.url or "http://127.0.0.1:9" for v in scenario.vendors}
    try:
        validate(gateway_config(scenario, urls), "scenario")
    except ConfigError as exc:
        return [
            f"gateway.{p}" if not p.startswith(("line ", "(top")) else f"gateway: {p}"
            for p in exc.problems
        ]
    if scenario.load.model is not None and scenario.load.model not in routes:
        return [f"load.model: '{scenario.load.model}' is not a route (routes: {', '.join(routes)})"]
    return []


def parse(raw: Any, source: str) -> Scenario:
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping with vendors, gateway, load"], source)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_shape_errors(exc), source) from None
    problems = _reference_errors(scenario)
    if problems:
        raise ConfigError(problems, source)
    return scenario


def load_text(text: str, source: str = "<string>") -> Scenario:
    return parse(parse_yaml(text, source), source)


def load_file(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            ["file not found (see gateway/chaos/scenarios/ for ready scenarios)"], str(p)
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror}"], str(p)) from None
    return load_text(text, str(p))


def dump_config(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False)
