"""Exporter choice (config, then OTEL_* variables), OTLP export to a loopback collector,
prices, token counts and outcome classes."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.api.responses import route_header
from gateway.config import load_text
from gateway.errors import AttemptRecord
from gateway.routing import Deployment
from gateway.simulator import VendorFleet
from gateway.telemetry.config import TelemetryConfig
from gateway.telemetry.cost import Pricing, cost_of, price_table, usage_tokens
from gateway.telemetry.names import request_outcome
from gateway.telemetry.request_log import RequestLog, StreamSink, UtcClock
from gateway.telemetry.setup import metrics_exporter, traces_exporter
from tests.conftest import FAST, config_for

EXPORTER_CASES = [
    ("off by default", {}, {}, "none"),
    ("config wins over env", {"exporter": "none"}, {"OTEL_TRACES_EXPORTER": "otlp"}, "none"),
    ("config otlp", {"exporter": "otlp"}, {}, "otlp"),
    ("env names it", {}, {"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
    ("env first of a list", {}, {"OTEL_TRACES_EXPORTER": "console,otlp"}, "console"),
    ("env unsupported: off", {}, {"OTEL_TRACES_EXPORTER": "zipkin"}, "none"),
    ("an OTLP endpoint turns it on", {}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "otlp"),
    ("a traces endpoint too", {}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/v1/traces"},
     "otlp"),
    ("env none beats an endpoint", {}, {"OTEL_TRACES_EXPORTER": "none",
                                        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "none"),
]  # fmt: skip


@pytest.mark.parametrize(("traces", "env", "expected"), [c[1:] for c in EXPORTER_CASES],
                         ids=[c[0] for c in EXPORTER_CASES])  # fmt: skip
def test_traces_exporter(traces: dict[str, str], env: dict[str, str], expected: str) -> None:
    assert traces_exporter(TelemetryConfig.model_validate({"traces": traces}), env) == expected


def test_metrics_exporter() -> None:
    config = TelemetryConfig()
    assert metrics_exporter(config, {}) == "none"
    assert metrics_exporter(config, {"OTEL_METRICS_EXPORTER": "otlp"}) == "otlp"
    assert metrics_exporter(config, {"OTEL_METRICS_EXPORTER": "prometheus"}) == "none"
    configured = TelemetryConfig.model_validate({"metrics": {"exporter": "otlp"}})
    assert metrics_exporter(configured, {}) == "otlp"


PRICES = {
    "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
    "groq/llama-3": {"input_cost_per_token": 5e-08, "output_cost_per_token": 8e-08},
    "claude-x": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05},
    "embed-1": {"input_cost_per_token": 1e-07},
    "image-model": {"output_cost_per_image": 0.04},
}
PRICE_CONFIG = """
providers:
  oa: {kind: openai, api_key: k}
  gq: {kind: groq, api_key: k}
  lo: {kind: vllm, base_url: "http://h/v1"}
routes:
  r:
    fallbacks:
      - oa/gpt-4o
      - gq/llama-3
      - lo/anthropic/claude-x
      - oa/embed-1
      - oa/image-model
      - lo/unknown
      - {provider: lo, model: mine, cost: {input_per_mtok: 2, output_per_mtok: 4}}
      - {provider: oa, model: gpt-4o-mini, cost: {input_per_mtok: 0}}
"""


def test_price_table_overrides_then_litellm_names() -> None:
    table = price_table(load_text(PRICE_CONFIG).config, lambda: PRICES)
    assert table == {
        "oa/gpt-4o": (2.5e-06, 1e-05),  # the model name
        "gq/llama-3": (5e-08, 8e-08),  # "<kind>/<model>"
        "lo/anthropic/claude-x": (3e-06, 1.5e-05),  # the last path part
        "oa/embed-1": (1e-07, 0.0),
        "lo/mine": (2e-06, 4e-06),  # the config's override
        "oa/gpt-4o-mini": (0.0, 0.0),
    }


def test_litellm_map_is_read_only_when_needed() -> None:
    loads = []

    def load() -> dict[str, Any]:
        loads.append(1)
        return PRICES

    priced = "providers: {oa: {kind: openai, api_key: k}}\nroutes: {r: {fallbacks: [{provider: oa, model: m, cost: {input_per_mtok: 1}}]}}\n"
    price_table(load_text(priced).config, load)
    assert loads == []
    pricing = Pricing(load)
    config = load_text(PRICE_CONFIG).config
    assert pricing.cost(config, 1, "oa/gpt-4o", {"prompt_tokens": 10, "completion_tokens": 2}) == (
        10, 2, pytest.approx(10 * 2.5e-06 + 2 * 1e-05),
    )  # fmt: skip
    pricing.cost(config, 1, "oa/gpt-4o", {})
    pricing.cost(config, 2, "oa/gpt-4o", {})  # a new config version: a new table, same map
    assert loads == [1]


def test_the_real_litellm_map_prices_known_models() -> None:
    table = price_table(
        load_text(PRICE_CONFIG.replace("lo/unknown", "oa/gpt-4o-mini-2024-07-18")).config
    )
    assert table["oa/gpt-4o"][0] > 0 and table["oa/gpt-4o-mini-2024-07-18"][1] > 0
    assert "lo/unknown" not in table


USAGE_CASES = [
    ({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}, (7, 3)),
    ({"prompt_tokens": 5, "total_tokens": 5}, (5, 0)),  # embeddings
    ({"input_tokens": 4, "output_tokens": 9}, (4, 9)),
    ({"prompt_tokens": "7", "completion_tokens": None}, (0, 0)),
    (None, (0, 0)),
    ("garbage", (0, 0)),
]


@pytest.mark.parametrize(("usage", "expected"), USAGE_CASES)
def test_usage_tokens(usage: Any, expected: tuple[int, int]) -> None:
    assert usage_tokens(usage) == expected


def test_cost_of() -> None:
    assert cost_of(None, 100, 100) == 0.0
    assert cost_of((1e-6, 2e-6), 1000, 500) == pytest.approx(0.002)


@pytest.mark.parametrize(
    ("status", "served", "outcome"),
    [(200, True, "ok"), (499, True, "cancelled"), (400, False, "rejected"),
     (429, False, "rejected"), (503, False, "failed"), (502, False, "failed"),
     (502, True, "interrupted")],
)  # fmt: skip
def test_request_outcome(status: int, served: bool, outcome: str) -> None:
    assert request_outcome(status, served) == outcome


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append((self.path, self.headers["content-type"], body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    thread.join(5)


def test_otlp_export_configured_in_providers_yaml(
    fleet: VendorFleet, start_gateway: Any, collector: tuple[str, list[Any]]
) -> None:
    url, received = collector
    telemetry = (
        f"telemetry:\n  traces: {{exporter: otlp, endpoint: '{url}/v1/traces'}}\n"
        f"  metrics: {{exporter: otlp, endpoint: '{url}/v1/metrics', interval_seconds: 60}}\n"
    )
    gw = start_gateway(config_for(fleet, "  chat: {fallbacks: [alpha/sim-a]}\n",
                                  extra=FAST + telemetry))  # fmt: skip
    response = httpx.post(
        gw.base_url + "/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "export me"}]},
    )
    assert response.status_code == 200
    gw.stop()  # the lifespan's shutdown flushes both exporters
    traces = [ExportTraceServiceRequest.FromString(b) for p, _, b in received if p == "/v1/traces"]
    spans = [s for t in traces for r in t.resource_spans for ss in r.scope_spans for s in ss.spans]
    assert sorted(s.name for s in spans) == ["chat chat", "chat sim-a"]
    service = {
        a.key: a.value.string_value for t in traces for r in t.resource_spans
        for a in r.resource.attributes
    }  # fmt: skip
    assert service["service.name"] == "failover-gateway"
    metrics = [ExportMetricsServiceRequest.FromString(b) for p, _, b in received
               if p == "/v1/metrics"]  # fmt: skip
    names = {m.name for e in metrics for r in e.resource_metrics for s in r.scope_metrics
             for m in s.metrics}  # fmt: skip
    assert {"gateway.requests", "gateway.request.duration"} <= names
    assert all(ctype == "application/x-protobuf" for _, ctype, _ in received)


def test_utc_clock_format() -> None:
    stamp = UtcClock().format(time.time())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp


def _record(deployment: str, outcome: str, reason: str, ms: float) -> AttemptRecord:
    provider, model = deployment.split("/")
    return AttemptRecord(deployment, provider, model, outcome, reason, None, "", ms)


@pytest.mark.parametrize(
    ("served", "attempts", "cost", "trace_id", "prompt"),
    [
        (None, [], None, 0, None),
        (
            Deployment('we"ird\\/m', 'we"ird\\', "m", 0, 1.0, None),
            [
                _record("a/m", "skipped", "breaker_open", 0.0),
                _record("b/m", "failover", "status_503", 12.5),
                _record('we"ird\\/m', "ok", "ok", 3.25),
            ],
            (12, 40, 2.4e-05),
            0xABC,
            [{"role": "user", "content": 'quote " backslash \\ newline \n ünï'}],
        ),
    ],
)
def test_request_log_line_is_the_json_of_its_facts(
    served: Deployment | None,
    attempts: list[AttemptRecord],
    cost: tuple[int, int, float] | None,
    trace_id: int,
    prompt: Any,
) -> None:
    """The line is built from a cached fragment and formatted numbers, not one dict per
    line: it must still be exactly the JSON of what the request did."""
    log = RequestLog(StreamSink("stdout"))
    alias = 'chat "x"'
    facts = (1_700_000_000.5, "req-1", alias, "chat", True, 200 if served else 503, served,
             attempts, 0.0123456, cost, trace_id, prompt)  # fmt: skip
    for _ in range(2):  # the second line reuses the cached fragment
        line = log.encode(facts)
        assert line.endswith(b"}\n") and line.count(b"\n") == 1
        parsed = json.loads(line)
        expected: dict[str, Any] = {
            "ts": "2023-11-14T22:13:20.500Z", "event": "request", "request_id": "req-1",
            "alias": alias, "endpoint": "chat", "stream": True,
            "status": 200 if served else 503, "outcome": "ok" if served else "failed",
            "provider": served.provider if served else None,
            "deployment": served.id if served else None,
            "attempts": sum(a.outcome != "skipped" for a in attempts),
            "route": route_header(attempts), "latency_ms": 12.35,
            "ttft_ms": 3.25 if served else None,
        }  # fmt: skip
        if cost is not None:
            expected |= {"input_tokens": 12, "output_tokens": 40, "cost_usd": 2.4e-05}
        if trace_id:
            expected["trace_id"] = f"{trace_id:032x}"
        expected["prompt"] = prompt
        assert parsed == expected
        assert list(parsed) == list(expected)  # ts first, as a reader scans them
