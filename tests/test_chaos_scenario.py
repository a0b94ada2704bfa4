"""Scenario files: the library loads, and every mistake is named by its key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.chaos.library import resolve, scenario_paths
from gateway.chaos.load import plan_requests
from gateway.chaos.runner import check_url_mode, load_plan
from gateway.chaos.scenario import DownFault, gateway_config, load_file, load_text
from gateway.config import validate
from gateway.errors import ConfigError

BASE = """
name: t
vendors: [{name: alpha}, {name: beta}]
gateway:
  routes:
    chat: {fallbacks: [alpha/sim, beta/sim]}
"""

FAULT_CLASSES = {
    "down", "reset", "hang", "status", "rate_limit", "slow_first_token", "stall", "cut",
    "malformed",
}  # fmt: skip


def test_library_has_one_scenario_per_fault_class_and_each_loads() -> None:
    scenarios = {p.stem: load_file(p) for p in scenario_paths()}
    kinds = {e.fault.kind for s in scenarios.values() for e in s.faults}
    assert kinds >= FAULT_CLASSES
    assert any(e.flap for s in scenarios.values() for e in s.faults), "a flapping scenario"
    assert any(e.vendor == "*" for s in scenarios.values() for e in s.faults), "all vendors down"
    storms = [e.fault for s in scenarios.values() for e in s.faults if e.fault.kind == "rate_limit"]
    assert {f.retry_after is None for f in storms if not isinstance(f, DownFault)} == {True, False}
    for name, scenario in scenarios.items():
        assert scenario.name == name, "file name and scenario name agree"
        assert scenario.description.strip()
        assert scenario.slo.nothing_lost


def test_resolve_accepts_a_library_name_or_a_path(tmp_path: Path) -> None:
    assert resolve("hang") == scenario_paths()[0].parent / "hang.yaml"
    own = tmp_path / "mine.yaml"
    assert resolve(str(own)) == own


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "s.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("faults: [{vendor: gamma, at: 1, duration: 1, fault: {kind: hang}}]",
         "faults[0].vendor: unknown vendor 'gamma' (known: alpha, beta, or '*' for all)"),
        ("faults: [{vendor: alpha, at: 1, duration: 1, fault: {kind: hangs}}]",
         "faults[0].fault: unknown fault kind; use one of:"),
        ("faults: [{vendor: alpha, at: 1, duration: 1, fault: {kind: status, code: 5}}]",
         "faults[0].fault.code: unknown key"),
        ("faults: [{vendor: alpha, at: 1, duration: 0, fault: {kind: hang}}]",
         "faults[0].duration: Input should be greater than 0"),
        ("faults: [{vendor: alpha, at: 1, duration: 1, fault: {kind: down}, flap: {faulty: 1}}]",
         "faults[0].flap.healthy: Field required"),
        ("faults: [{vendor: alpha, at: 9, duration: 1, fault: {kind: hang}}]",
         "faults[0].at: starts at 9s, after the load ends (load.duration 8s)"),
        ("load: {rate: 0}", "load.rate: Input should be greater than 0"),
        ("load: {prompt_words: [10, 2]}", "load: Value error, prompt_words must be [min, max]"),
        ("load: {model: other}", "load.model: 'other' is not a route (routes: chat)"),
        ("slo: {success_rate: 1.5}", "slo.success_rate: Input should be less than or equal to 1"),
        ("slo: {p99: 3}", "slo.p99: unknown key"),
        ("profiles: {long: {time_scale: 2}}", "profiles.long: Input should be 'short' or 'full'"),
    ],
)  # fmt: skip
def test_path_named_problems(extra: str, problem: str) -> None:
    found = problems(BASE + extra)
    assert any(p.startswith(problem) for p in found), found


def test_gateway_section_is_checked_as_the_providers_yaml_it_becomes() -> None:
    text = """
name: t
vendors: [{name: alpha}]
gateway:
  breaker: {open_seconds: -1}
  routes:
    chat: {fallbacks: [alpha/sim, zeta/sim]}
"""
    found = problems(text)
    assert "gateway.breaker.open_seconds: Input should be greater than 0" in found
    found = problems(text.replace("open_seconds: -1", "open_seconds: 1"))
    assert found == ["gateway.routes.chat.fallbacks[1]: unknown provider 'zeta' (known: alpha)"]
    assert problems("name: t\nvendors: [{name: alpha}]\ngateway: {}\n") == [
        "gateway.routes: required: at least one route over the scenario's vendors"
    ]
    with_providers = BASE + "  providers: {}\n"
    assert problems(with_providers) == [
        "gateway: leave out 'providers' and 'server'; the tool fills them in"
    ]


def test_down_needs_a_vendor_the_tool_runs() -> None:
    text = BASE.replace("{name: beta}", "{name: beta, url: 'http://127.0.0.1:9'}")
    found = problems(text + "faults: [{vendor: '*', at: 1, duration: 1, fault: {kind: down}}]")
    assert found == [
        "faults[0].fault: 'down' needs a vendor this tool starts; beta is external (has a url)"
    ]


def test_gateway_config_points_at_the_vendors() -> None:
    scenario = load_text(
        BASE.replace("{name: beta}", "{name: beta, provider: {capabilities: {prefill: true}}}")
    )
    config = gateway_config(scenario, {"alpha": "http://h:1", "beta": "http://h:2"})
    assert config["providers"] == {
        "alpha": {"kind": "openai_compatible", "base_url": "http://h:1/v1"},
        "beta": {
            "kind": "openai_compatible",
            "base_url": "http://h:2/v1",
            "capabilities": {"prefill": True},
        },
    }
    loaded = validate(yaml.safe_load(yaml.safe_dump(config)), "x")
    assert loaded.config.providers["beta"].accepts_prefill
    assert scenario.primary == "alpha" and scenario.route == "chat"


def test_url_mode_needs_fixed_ports() -> None:
    scenario = load_text(BASE.replace("{name: alpha}", "{name: alpha, port: 9101}"))
    assert check_url_mode(scenario) == [
        "vendors[1].port: give 'beta' a fixed port that the gateway's providers.yaml points "
        "at (see `gateway chaos config`); port 0 picks a random one"
    ]


def test_profiles_scale_the_load_and_requests_are_deterministic() -> None:
    scenario = load_text(BASE + "load: {rate: 10, duration: 2, concurrency: 4, seed: 7}\n")
    short = load_plan(scenario, scenario.profile("short"), "http://g")
    full = load_plan(scenario, scenario.profile("full"), "http://g")
    assert (short.rate, short.duration, short.concurrency, short.url) == (10, 2, 4, "http://g/v1")
    assert (full.rate, full.duration, full.concurrency) == (20, 12, 8)
    planned = plan_requests(short)
    assert len(planned) == 20 and planned == plan_requests(short)
    assert [p.at for p in planned[:3]] == [0.0, 0.1, 0.2]
    assert all(4 <= p.words <= 40 for p in planned)
    assert 0 < sum(p.stream for p in planned) < 20
    assert len({p.prompt for p in planned}) == 20
