"""The health section of providers.yaml and the pure side of probes: targets, requests, delays."""

from __future__ import annotations

import random

import pytest

from gateway.config import load_text
from gateway.errors import ConfigError
from gateway.health.config import ProbeConfig
from gateway.health.prober import next_delay
from gateway.health.probes import models_request, probe_targets

BASE = """
providers:
  oa: {kind: openai, api_key: sk-test-000000000000}
  az: {kind: azure, base_url: "https://az.example", api_key: azkey123, api_version: "2024-06-01"}
  an: {kind: anthropic, api_key: ankey123}
  br: {kind: bedrock}
  lo: {kind: vllm, base_url: "http://10.0.0.1:8000/v1", headers: {X-Org: acme}}
routes:
  chat: {fallbacks: [oa/gpt-4o, oa/gpt-4o-mini, az/gpt-4o, an/claude, br/titan, lo/llama]}
  other: {fallbacks: [oa/gpt-4o, lo/llama]}
"""


def test_defaults_probe_cheaply_where_a_model_list_exists() -> None:
    config = load_text(BASE).config
    kinds = {
        name: config.health.probe.merged(p.probe).kind_for(p.kind)
        for name, p in config.providers.items()
    }
    assert kinds == {"oa": "models", "az": "models", "an": "none", "br": "none", "lo": "models"}
    probe = config.health.probe
    assert (probe.interval, probe.timeout, probe.jitter) == (10.0, 2.0, 0.1)
    assert (probe.healthy_threshold, probe.unhealthy_threshold) == (2, 3)


def test_provider_probe_overrides_only_the_keys_it_sets() -> None:
    text = BASE.replace(
        "  an: {kind: anthropic, api_key: ankey123}",
        "  an: {kind: anthropic, api_key: ankey123, probe: {kind: completion}}",
    )
    text = "health: {probe: {interval: 3, unhealthy_threshold: 5}}\n" + text  # fmt: skip
    config = load_text(text).config
    merged = config.health.probe.merged(config.providers["an"].probe)
    assert (merged.kind, merged.interval, merged.unhealthy_threshold) == ("completion", 3.0, 5)
    assert config.health.probe.merged(None) is config.health.probe


def test_probe_targets_one_model_list_per_provider_one_completion_per_deployment() -> None:
    text = BASE.replace("an: {kind: anthropic, api_key: ankey123}",
                        "an: {kind: anthropic, api_key: ankey123, probe: {kind: completion}}")  # fmt: skip
    loaded = load_text(text)
    targets = probe_targets(loaded.config, loaded.disabled)
    assert sorted(targets) == ["completion:an/claude", "models:az", "models:lo", "models:oa"]
    assert targets["models:oa"].deployments == ("oa/gpt-4o", "oa/gpt-4o-mini")
    assert targets["models:lo"].deployments == ("lo/llama",)  # listed twice, probed once
    assert targets["completion:an/claude"].model == "claude"
    assert probe_targets(loaded.config, {"oa": "env var missing"}).keys() == {
        "completion:an/claude", "models:az", "models:lo"
    }  # fmt: skip


def test_probe_kind_none_turns_probing_off() -> None:
    loaded = load_text("health: {probe: {kind: none}}\n" + BASE)
    assert probe_targets(loaded.config, loaded.disabled) == {}


PROBLEM_CASES = [
    ("global models on bedrock", "health: {probe: {kind: models}}\n" + BASE,
     "health.probe.kind: 'models' probes are not available for kind 'bedrock' "
     "(set providers.br.probe.kind to 'completion' or 'none')"),
    ("provider models on bedrock", BASE.replace("br: {kind: bedrock}",
     "br: {kind: bedrock, probe: {kind: models}}"),
     "providers.br.probe.kind: 'models' probes are not available for kind 'bedrock'"),
    ("unknown key", BASE.replace("br: {kind: bedrock}", "br: {kind: bedrock, probe: {intervl: 3}}"),
     "providers.br.probe.intervl: unknown key"),
    ("bad threshold", "health: {probe: {unhealthy_threshold: 0}}\n" + BASE,
     "health.probe.unhealthy_threshold: Input should be greater than or equal to 1"),
    ("bad outlier rate", "health: {outlier: {failure_rate: 1.5}}\n" + BASE,
     "health.outlier.failure_rate: Input should be less than or equal to 1"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "problem"), [c[1:] for c in PROBLEM_CASES],
                         ids=[c[0] for c in PROBLEM_CASES])  # fmt: skip
def test_config_problems_name_the_path(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


REQUEST_CASES = [
    ("oa", "https://api.openai.com/v1/models", {"Authorization": "Bearer sk-test-000000000000"}),
    ("az", "https://az.example/openai/models?api-version=2024-06-01", {"api-key": "azkey123"}),
    ("an", "https://api.anthropic.com/v1/models",
     {"x-api-key": "ankey123", "anthropic-version": "2023-06-01"}),
    ("lo", "http://10.0.0.1:8000/v1/models", {"X-Org": "acme"}),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "url", "headers"), REQUEST_CASES)
def test_models_request(provider: str, url: str, headers: dict[str, str]) -> None:
    config = load_text(BASE).config
    assert models_request(config.providers[provider]) == (url, headers)


@pytest.mark.parametrize(("interval", "jitter"), [(10.0, 0.1), (0.2, 0.5), (5.0, 0.0)])
def test_next_delay_stays_within_the_jitter(interval: float, jitter: float) -> None:
    rng = random.Random(7)
    config = ProbeConfig(interval=interval, jitter=jitter)
    delays = [next_delay(config, rng) for _ in range(2000)]
    assert min(delays) >= interval * (1 - jitter)
    assert max(delays) <= interval * (1 + jitter)
    if jitter:  # spread, so targets do not probe in step
        assert max(delays) - min(delays) > interval * jitter
