"""The `telemetry:` section of providers.yaml, and per-deployment prices.

```yaml
telemetry:
  enabled: true            # false: no metrics, spans or request logs (health still runs)
  service_name: failover-gateway
  traces:
    exporter: null         # otlp | console | none; null: from OTEL_TRACES_EXPORTER /
                           # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else none
    endpoint: null         # OTLP/HTTP URL, e.g. http://collector:4318/v1/traces
    sample_ratio: 1.0      # of root traces; a caller's sampled flag is always followed
  metrics:
    exporter: null         # otlp | none (Prometheus /metrics is always served)
    endpoint: null
    interval_seconds: 30
  logs:
    requests: true         # one JSON line per request on `output`
    output: stdout         # stdout | stderr: written in batches at most 0.25 s apart;
                           # logger: each line to the `gateway.requests` logger (INFO)
    prompts: false         # also log the request's messages / input (off: never logged)
routes:
  chat:
    fallbacks:
      - {provider: openai, model: gpt-4o-mini, cost: {input_per_mtok: 0.15, output_per_mtok: 0.6}}
```

OTLP endpoints and headers also come from the standard `OTEL_EXPORTER_OTLP_*` variables.
`logs.requests` and `logs.prompts` follow a reload; the rest is read at start.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from gateway.strict_model import StrictModel


class TracesConfig(StrictModel):
    exporter: Literal["otlp", "console", "none"] | None = None
    endpoint: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)


class MetricsConfig(StrictModel):
    exporter: Literal["otlp", "none"] | None = None
    endpoint: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    interval_seconds: float = Field(default=30.0, gt=0)


class LogsConfig(StrictModel):
    requests: bool = True
    output: Literal["stdout", "stderr", "logger"] = "stdout"
    prompts: bool = False


class TelemetryConfig(StrictModel):
    enabled: bool = True
    service_name: str = "failover-gateway"
    traces: TracesConfig = TracesConfig()
    metrics: MetricsConfig = MetricsConfig()
    logs: LogsConfig = LogsConfig()


class CostConfig(StrictModel):
    """USD per million tokens; overrides litellm's price map for one deployment."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
