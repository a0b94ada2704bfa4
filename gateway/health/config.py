"""The `health:` section of providers.yaml: active probes and passive outlier detection.

```yaml
health:
  probe:                  # defaults for every provider; a provider's `probe:` overrides keys
    kind: models          # models | completion | none   (default: by provider kind)
    interval: 10          # seconds between probes of one target
    timeout: 2            # seconds one probe may take
    jitter: 0.1           # each wait is interval * (1 +/- jitter)
    healthy_threshold: 2  # probes in a row that bring an unhealthy deployment back
    unhealthy_threshold: 3
  outlier:                # passive detection from real traffic
    window_seconds: 30
    min_calls: 10
    failure_rate: 0.5     # eject at this share of failed calls in the window
    slow_call_seconds: 10 # an answer (or a stream's first token) slower than this is slow
    slow_call_rate: 0.8   # eject at this share of slow calls in the window
    eject_seconds: 10     # first ejection; doubles for a flapping deployment
    max_eject_seconds: 120
    ttft_ewma_alpha: 0.2
```

`models` probes `GET {base_url}/models` (Anthropic: `GET /v1/models`) and bills no tokens;
`completion` sends a one-token chat completion to each deployment (it bills a token, so it
is used only when configured); `none` switches probing off. The default is `models` for
OpenAI-compatible kinds and `none` for the other kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from gateway.strict_model import StrictModel

if TYPE_CHECKING:
    from gateway.config import ProviderConfig

ProbeKind = Literal["models", "completion", "none"]
# Kinds with a free model-list endpoint the `models` probe knows how to call.
MODELS_PROBE_KINDS = frozenset(
    {
        "openai",
        "azure",
        "vllm",
        "ollama",
        "groq",
        "mistral",
        "together",
        "openai_compatible",
        "anthropic",
    }
)
_MODELS_BY_DEFAULT = MODELS_PROBE_KINDS - {"anthropic"}


class ProbeConfig(StrictModel):
    kind: ProbeKind | None = None
    interval: float = Field(default=10.0, gt=0)
    timeout: float = Field(default=2.0, gt=0)
    jitter: float = Field(default=0.1, ge=0, lt=1)
    healthy_threshold: int = Field(default=2, ge=1)
    unhealthy_threshold: int = Field(default=3, ge=1)

    def kind_for(self, provider_kind: str) -> ProbeKind:
        if self.kind is not None:
            return self.kind
        return "models" if provider_kind in _MODELS_BY_DEFAULT else "none"

    def merged(self, override: ProbeConfig | None) -> ProbeConfig:
        """This config with the keys `override` sets explicitly."""
        if override is None:
            return self
        return self.model_copy(
            update={key: getattr(override, key) for key in override.model_fields_set}
        )


class OutlierConfig(StrictModel):
    enabled: bool = True
    window_seconds: float = Field(default=30.0, gt=0)
    min_calls: int = Field(default=10, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    slow_call_seconds: float = Field(default=10.0, gt=0)
    slow_call_rate: float = Field(default=0.8, gt=0, le=1)
    eject_seconds: float = Field(default=10.0, gt=0)
    max_eject_seconds: float = Field(default=120.0, gt=0)
    ttft_ewma_alpha: float = Field(default=0.2, gt=0, le=1)


class HealthConfig(StrictModel):
    probe: ProbeConfig = ProbeConfig()
    outlier: OutlierConfig = OutlierConfig()


def probe_problems(health: HealthConfig, providers: Mapping[str, ProviderConfig]) -> list[str]:
    """Phase-two checks: a `models` probe needs a vendor with a model-list endpoint."""
    problems = []
    for name, provider in providers.items():
        probe = health.probe.merged(provider.probe)
        if probe.kind_for(provider.kind) == "models" and provider.kind not in MODELS_PROBE_KINDS:
            where = f"providers.{name}.probe.kind" if provider.probe else "health.probe.kind"
            problems.append(
                f"{where}: 'models' probes are not available for kind '{provider.kind}' "
                f"(set providers.{name}.probe.kind to 'completion' or 'none')"
            )
    return problems
