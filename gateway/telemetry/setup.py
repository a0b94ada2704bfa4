"""Telemetry: the OpenTelemetry providers of one gateway, its observers and `/metrics`.

Nothing here touches OpenTelemetry's global providers: each app owns its own meter and
tracer providers and its own Prometheus registry, so several gateways can share a
process (tests do). Exporters:

    metrics  Prometheus text at GET /metrics, always (when telemetry is enabled);
             OTLP/HTTP too with `telemetry.metrics.exporter: otlp` or OTEL_METRICS_EXPORTER
    traces   none by default; OTLP/HTTP with `telemetry.traces.exporter: otlp`,
             OTEL_TRACES_EXPORTER=otlp or an OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT;
             `console` prints spans (debugging); tests pass span processors directly
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import Response
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from gateway.api.responses import error_body
from gateway.observe import Observer
from gateway.telemetry import gauges
from gateway.telemetry import names as n
from gateway.telemetry.batch import TelemetryBatch
from gateway.telemetry.config import TelemetryConfig
from gateway.telemetry.cost import PriceMap, Pricing, load_litellm_prices
from gateway.telemetry.histograms import export_through
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.request_log import RequestLog, sink_for
from gateway.telemetry.tracing import TracingObserver

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.state import GatewayState


def traces_exporter(config: TelemetryConfig, env: Mapping[str, str]) -> str:
    """otlp | console | none: the config's choice, else the standard OTEL_* variables."""
    if config.traces.exporter is not None:
        return config.traces.exporter
    named = env.get("OTEL_TRACES_EXPORTER", "").split(",")[0].strip().lower()
    if named:
        return named if named in ("otlp", "console") else "none"
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    return "none"


def metrics_exporter(config: TelemetryConfig, env: Mapping[str, str]) -> str:
    if config.metrics.exporter is not None:
        return config.metrics.exporter
    named = env.get("OTEL_METRICS_EXPORTER", "").split(",")[0].strip().lower()
    return "otlp" if named == "otlp" else "none"


def _span_processors(config: TelemetryConfig, env: Mapping[str, str]) -> list[SpanProcessor]:
    kind = traces_exporter(config, env)
    if kind == "console":
        return [SimpleSpanProcessor(ConsoleSpanExporter())]
    if kind != "otlp":
        return []
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    headers = {k: v.get_secret_value() for k, v in config.traces.headers.items()} or None
    exporter = OTLPSpanExporter(endpoint=config.traces.endpoint, headers=headers)
    return [BatchSpanProcessor(exporter)]


def _otlp_metric_readers(config: TelemetryConfig, env: Mapping[str, str]) -> list[MetricReader]:
    if metrics_exporter(config, env) != "otlp":
        return []
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    headers = {k: v.get_secret_value() for k, v in config.metrics.headers.items()} or None
    exporter = OTLPMetricExporter(endpoint=config.metrics.endpoint, headers=headers)
    interval = config.metrics.interval_seconds * 1000
    return [PeriodicExportingMetricReader(exporter, export_interval_millis=interval)]


class Telemetry:
    """One gateway's telemetry. `enabled` False leaves the request path untouched."""

    def __init__(
        self,
        config: TelemetryConfig,
        *,
        env: Mapping[str, str] | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
        load_prices: Callable[[], PriceMap] = load_litellm_prices,
    ) -> None:
        env = os.environ if env is None else env
        self.config = config
        self.enabled = config.enabled and env.get("OTEL_SDK_DISABLED", "").lower() != "true"
        self.pricing = Pricing(load_prices)
        self.registry = CollectorRegistry()
        self.metrics: Metrics | None = None
        self._state: GatewayState | None = None
        self._batch: TelemetryBatch | None = None
        self.meter_provider: MeterProvider | None = None
        self._readers: list[MetricReader] = []
        self._resource: Resource | None = None
        self.tracer_provider: TracerProvider | None = None
        if not self.enabled:
            return
        resource = self._resource = Resource.create({"service.name": config.service_name})
        self._readers = readers = [
            PrometheusMetricReader(
                registry=self.registry, disable_target_info=True, scope_info_enabled=False
            ),
            *metric_readers,
            *_otlp_metric_readers(config, env),
        ]
        self.meter_provider = MeterProvider(
            metric_readers=readers,
            resource=resource,
            exemplar_filter=AlwaysOffExemplarFilter(),
            shutdown_on_exit=False,
        )
        processors = [*span_processors, *_span_processors(config, env)]
        if processors:
            ratio = config.traces.sample_ratio
            sampler = ParentBased(TraceIdRatioBased(ratio)) if ratio < 1.0 else None
            self.tracer_provider = TracerProvider(
                sampler=sampler, resource=resource, shutdown_on_exit=False
            )
            for processor in processors:
                self.tracer_provider.add_span_processor(processor)

    def on_breaker_change(self, deployment_id: str, old: str, new: str) -> None:
        if self.metrics is not None:
            self.metrics.on_breaker_change(deployment_id, old, new)

    def attach(self, state: GatewayState) -> None:
        """Register the observers on `state` (in the app's lifespan)."""
        if not self.enabled or self.meter_provider is None:
            return
        self._state = state
        self.pricing.table(state.snapshot.config, state.snapshot.version)  # load prices now
        meter = self.meter_provider.get_meter(n.METER)
        self.metrics = Metrics(meter)
        logs = self.config.logs
        # logs.requests and logs.prompts are read per request from its config (they
        # follow reloads); the output is chosen here, once
        log = RequestLog(sink_for(logs.output))
        self._batch = TelemetryBatch(
            self.metrics,
            log,
            self.pricing,
            state.clock,
            lambda: state.snapshot.config.telemetry.logs,
        )
        assert self._resource is not None
        export_through(
            self._readers, self.metrics.histograms, n.METER, self._resource, self._batch.drain
        )
        gauges.register(meter, lambda: self._state)
        observers: list[Observer] = [self._batch]
        if self.tracer_provider is not None:
            tracer = self.tracer_provider.get_tracer(n.TRACER)
            observers.append(TracingObserver(tracer, self.pricing))
        for observer in observers:
            state.observer.add(observer)

    def shutdown(self) -> None:
        self._state = None
        if self._batch is not None:
            self._batch.close()
            self._batch = None
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/metrics")
        async def metrics() -> Response:
            if not self.enabled:
                body = error_body(
                    "Metrics are off: telemetry.enabled is false in the config "
                    "(or OTEL_SDK_DISABLED=true). Turn telemetry on to scrape /metrics.",
                    "invalid_request_error",
                    "telemetry_disabled",
                )
                return Response(body, status_code=404, media_type="application/json")
            return Response(self.metrics_text(), media_type=CONTENT_TYPE_LATEST)

        return router
