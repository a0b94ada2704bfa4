"""Telemetry end to end: a known sequence of requests through the openai SDK, then the
spans (in-memory exporter), the metrics (in-memory reader and a /metrics scrape) and
the request log must account for exactly those requests."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from gateway.api import responses
from gateway.app import GatewayApp
from gateway.config import load_text
from gateway.server import bind, serve_in_thread, server_for
from gateway.simulator import FaultSpec, VendorFleet
from gateway.streaming import Relay
from gateway.telemetry.setup import Telemetry
from tests.conftest import FAST, RunningGateway, config_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
ROUTES = """
  chat:
    fallbacks:
      - alpha/gpt-4o-mini
      - {provider: beta, model: sim-b, cost: {input_per_mtok: 1000000, output_per_mtok: 2000000}}
  solo:
    fallbacks: [gamma/sim-c]
"""
QUIET = FAST + "health: {probe: {kind: none}}\n"
LOGGED = QUIET + "telemetry: {logs: {output: logger}}\n"


@dataclass
class Instrumented:
    gw: RunningGateway
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader


@pytest.fixture
def serve() -> Iterator[Callable[[GatewayApp], RunningGateway]]:
    """Serve a GatewayApp built by the test (with its own Telemetry) on a loopback port."""
    started: list[RunningGateway] = []

    def start(app: GatewayApp) -> RunningGateway:
        sock = bind("127.0.0.1", 0)
        server = server_for(app)  # the production server settings, around the test's app
        thread = serve_in_thread(server, [sock])
        running = RunningGateway(f"http://127.0.0.1:{sock.getsockname()[1]}", app, server, thread)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def instrumented(serve: Callable[[GatewayApp], RunningGateway], config_text: str) -> Instrumented:
    loaded = load_text(config_text, "test")
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = Telemetry(
        loaded.config.telemetry,
        env={},
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[reader],
    )
    return Instrumented(serve(GatewayApp(loaded, telemetry)), spans, reader)


def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=10)


def chat(gw: RunningGateway, model: str = "chat", **extra: Any) -> Any:
    raw = client(gw).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "count me"}], **extra
    )
    return raw.headers, raw.parse()


def points(reader: InMemoryMetricReader) -> dict[tuple[str, frozenset[Any]], float]:
    """(metric, labels) -> value; histograms give their count."""
    data = reader.get_metrics_data()
    assert data is not None
    out = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for p in metric.data.data_points:
                    value = p.count if isinstance(p, HistogramDataPoint) else p.value
                    out[(metric.name, frozenset(p.attributes.items()))] = value
    return out


def scrape(gw: RunningGateway) -> dict[tuple[str, frozenset[Any]], float]:
    text = httpx.get(gw.url + "/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**kv: str) -> frozenset[Any]:
    return frozenset(kv.items())


def test_known_sequence_is_counted_exactly(
    fleet: VendorFleet, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.requests")
    run = instrumented(serve, config_for(fleet, ROUTES, extra=LOGGED))
    gw = run.gw
    usage: dict[str, list[int]] = {"alpha": [0, 0], "beta": [0, 0]}

    def add(provider: str, u: Any) -> None:
        usage[provider][0] += u.prompt_tokens
        usage[provider][1] += u.completion_tokens

    for _ in range(2):
        _, answer = chat(gw)
        add("alpha", answer.usage)
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=503, count=1))
    headers, answer = chat(gw)
    assert headers["x-gateway-route"] == "alpha/gpt-4o-mini=failover:status_503,beta/sim-b=ok"
    add("beta", answer.usage)
    stream = client(gw).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "stream"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    last = [chunk for chunk in stream][-1]
    add("alpha", last.usage)
    fleet["gamma"].set_fault(FaultSpec(kind="status", status=500))
    with pytest.raises(openai.APIStatusError) as failed:
        chat(gw, "solo")
    assert failed.value.status_code == 503
    assert failed.value.response.headers["x-gateway-route"] == (
        "gamma/sim-c=failover:status_500,gamma/sim-c=failover:status_500"
    )
    traced = httpx.post(
        gw.base_url + "/chat/completions",
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        json={"model": "chat", "messages": [{"role": "user", "content": "traced"}]},
    )
    add("alpha", openai.types.CompletionUsage(**traced.json()["usage"]))

    expected = {
        ("gateway.requests", labels(alias="chat", outcome="ok")): 5,
        ("gateway.requests", labels(alias="solo", outcome="failed")): 1,
        ("gateway.attempts", labels(provider="alpha", deployment="alpha/gpt-4o-mini",
                                    outcome="ok", reason="ok")): 4,
        ("gateway.attempts", labels(provider="alpha", deployment="alpha/gpt-4o-mini",
                                    outcome="failover", reason="status_503")): 1,
        ("gateway.attempts", labels(provider="beta", deployment="beta/sim-b",
                                    outcome="ok", reason="ok")): 1,
        ("gateway.attempts", labels(provider="gamma", deployment="gamma/sim-c",
                                    outcome="failover", reason="status_500")): 2,
        ("gateway.failovers", labels(alias="chat", provider="alpha", reason="status_503")): 1,
        ("gateway.failovers", labels(alias="solo", provider="gamma", reason="status_500")): 2,
        ("gateway.request.duration", labels(alias="chat", outcome="ok")): 5,
        ("gateway.request.duration", labels(alias="solo", outcome="failed")): 1,
        ("gateway.time_to_first_token", labels(alias="chat", provider="alpha")): 1,  # streams
        ("gateway.tokens", labels(alias="chat", provider="alpha", type="input")): usage["alpha"][0],
        ("gateway.tokens", labels(alias="chat", provider="alpha", type="output")): usage["alpha"][1],
        ("gateway.tokens", labels(alias="chat", provider="beta", type="input")): usage["beta"][0],
        ("gateway.tokens", labels(alias="chat", provider="beta", type="output")): usage["beta"][1],
        ("gateway.alias.available_deployments", labels(alias="chat")): 2,
        ("gateway.alias.available_deployments", labels(alias="solo")): 1,
    }  # fmt: skip
    got = points(run.metrics)
    names = {"gateway.requests", "gateway.attempts", "gateway.failovers", "gateway.tokens",
             "gateway.request.duration", "gateway.time_to_first_token",
             "gateway.alias.available_deployments"}  # fmt: skip
    assert {k: v for k, v in got.items() if k[0] in names} == expected
    beta_cost = usage["beta"][0] * 1.0 + usage["beta"][1] * 2.0  # the config's override
    alpha_cost = usage["alpha"][0] * 0.15e-6 + usage["alpha"][1] * 0.6e-6  # litellm's map
    assert got[("gateway.cost.usd", labels(alias="chat", provider="beta"))] == beta_cost
    assert got[("gateway.cost.usd", labels(alias="chat", provider="alpha"))] == pytest.approx(
        alpha_cost
    )

    prom = scrape(gw)
    assert prom[("gateway_requests_total", labels(alias="chat", outcome="ok"))] == 5
    assert prom[("gateway_requests_total", labels(alias="solo", outcome="failed"))] == 1
    assert prom[("gateway_failovers_total", labels(alias="solo", provider="gamma",
                                                   reason="status_500"))] == 2  # fmt: skip
    assert prom[("gateway_request_duration_seconds_count", labels(alias="chat", outcome="ok"))] == 5
    assert prom[("gateway_cost_usd_total", labels(alias="chat", provider="beta"))] == beta_cost
    assert prom[("gateway_tokens_total", labels(alias="chat", provider="alpha",
                                                type="output"))] == usage["alpha"][1]  # fmt: skip
    assert prom[("gateway_breaker_state", labels(deployment="gamma/sim-c", provider="gamma",
                                                 state="closed"))] == 1  # fmt: skip
    assert prom[("gateway_deployment_state", labels(deployment="alpha/gpt-4o-mini",
                                                    provider="alpha", state="healthy"))] == 1  # fmt: skip

    check_spans(run.spans.get_finished_spans(), usage)
    check_log(caplog, beta_cost)


def check_spans(spans: tuple[ReadableSpan, ...], usage: dict[str, list[int]]) -> None:
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    attempts = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert len(servers) == 6 and len(attempts) == 8
    by_id = {s.context.span_id: s for s in servers}
    for a in attempts:
        assert a.parent is not None and a.parent.span_id in by_id  # every attempt has its request
    failover = next(s for s in servers if len([a for a in attempts
                                               if a.parent.span_id == s.context.span_id]) == 2
                    and s.attributes["gateway.alias"] == "chat")  # fmt: skip
    first, second = sorted(
        (a for a in attempts if a.parent.span_id == failover.context.span_id),
        key=lambda a: a.attributes["gateway.attempt"],
    )
    assert first.name == "chat gpt-4o-mini" and second.name == "chat sim-b"
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["error.type"] == "status_503"
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert (
        second.attributes["gateway.attempt"] == 2 and second.attributes["gateway.outcome"] == "ok"
    )
    assert second.attributes["gen_ai.usage.input_tokens"] == usage["beta"][0]
    assert second.attributes["gen_ai.usage.output_tokens"] == usage["beta"][1]
    assert failover.attributes["gen_ai.request.model"] == "chat"
    assert failover.attributes["gen_ai.response.model"] == "sim-b"
    assert failover.attributes["gen_ai.operation.name"] == "chat"
    assert failover.attributes["http.response.status_code"] == 200
    assert first.start_time >= failover.start_time and second.end_time <= failover.end_time
    solo = next(s for s in servers if s.attributes["gateway.alias"] == "solo")
    assert solo.status.status_code is StatusCode.ERROR
    assert solo.attributes["http.response.status_code"] == 503
    continued = [s for s in servers if format(s.context.trace_id, "032x") == TRACE_ID]
    assert len(continued) == 1
    assert continued[0].parent is not None
    assert format(continued[0].parent.span_id, "016x") == PARENT_ID
    assert continued[0].parent.is_remote
    streamed = next(s for s in servers if s.attributes["gen_ai.request.stream"])
    (served,) = [a for a in attempts if a.parent.span_id == streamed.context.span_id]
    assert 0 < served.attributes["gateway.ttft_ms"] <= (served.end_time - served.start_time) / 1e6
    assert len({s.context.trace_id for s in servers}) == 6  # one trace per request


def check_log(caplog: pytest.LogCaptureFixture, beta_cost: float) -> None:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert len(lines) == 6
    assert [line["status"] for line in lines] == [200, 200, 200, 200, 503, 200]
    failover = lines[2]
    assert failover["provider"] == "beta" and failover["attempts"] == 2
    assert failover["route"] == "alpha/gpt-4o-mini=failover:status_503,beta/sim-b=ok"
    assert failover["cost_usd"] == beta_cost
    assert len(failover["request_id"]) == 32 and failover["latency_ms"] > 0
    assert lines[3]["stream"] is True and lines[3]["ttft_ms"] > 0
    assert lines[4]["outcome"] == "failed" and lines[4]["provider"] is None
    assert lines[5]["trace_id"] == TRACE_ID
    assert all("prompt" not in line for line in lines)  # prompt logging is off by default


def test_prompt_logging_only_when_turned_on(
    fleet: VendorFleet, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.requests")
    extra = QUIET + "telemetry: {logs: {prompts: true, output: logger}}\n"
    run = instrumented(serve, config_for(fleet, ROUTES, extra=extra))
    chat(run.gw)
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert line["prompt"] == [{"role": "user", "content": "count me"}]


def test_telemetry_off_leaves_only_health(
    fleet: VendorFleet, start_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.requests")
    gw = start_gateway(config_for(fleet, ROUTES, extra=QUIET + "telemetry: {enabled: false}\n"))
    headers, _ = chat(gw)
    assert headers["x-gateway-route"] == "alpha/gpt-4o-mini=ok"  # the route header stays
    observers = gw.app.state().observer.observers
    assert [type(o).__name__ for o in observers] == ["PassiveHealth"]
    response = httpx.get(gw.url + "/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "telemetry_disabled"
    assert "telemetry.enabled" in response.json()["error"]["message"]
    assert not [r for r in caplog.records if r.name == "gateway.requests"]
    assert gw.app.state().runtimes["alpha/gpt-4o-mini"].health.calls == 1


def test_without_an_exporter_no_spans_are_made(fleet: VendorFleet, start_gateway: Any) -> None:
    gw = start_gateway(config_for(fleet, ROUTES, extra=QUIET))
    assert gw.app.telemetry.tracer_provider is None  # off by default: no span work at all
    assert "TracingObserver" not in [type(o).__name__ for o in gw.app.state().observer.observers]
    chat(gw)
    prom = scrape(gw)
    assert prom[("gateway_requests_total", labels(alias="chat", outcome="ok"))] == 1


def sse_chunks(gw: RunningGateway, **extra: Any) -> list[dict[str, Any]]:
    """The chunks of one stream exactly as the client receives them."""
    body = {"model": "solo", "messages": [{"role": "user", "content": "tokens"}], "stream": True}
    response = httpx.post(gw.base_url + "/chat/completions", json=body | extra, timeout=10)
    assert response.status_code == 200
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def test_stream_tokens_are_counted_when_the_client_did_not_ask_for_usage(
    fleet: VendorFleet, serve: Any
) -> None:
    """With `stream_usage`, the gateway asks the vendor for usage on every stream: tokens
    and cost are counted for clients that never ask, and those clients get the stream
    OpenAI would send them, without a usage chunk."""
    providers = config_for(fleet, ROUTES, extra=QUIET).replace(
        f'gamma: {{kind: openai_compatible, base_url: "{fleet["gamma"].openai_base_url}"}}',
        f'gamma: {{kind: openai_compatible, base_url: "{fleet["gamma"].openai_base_url}", '
        "capabilities: {stream_usage: true}}",
    )
    assert "stream_usage" in providers
    run = instrumented(serve, providers)
    asked = sse_chunks(run.gw, stream_options={"include_usage": True})
    usage = asked[-1]["usage"]
    assert asked[-1]["choices"] == [] and usage["completion_tokens"] > 0
    plain = sse_chunks(run.gw)
    assert plain and all(chunk["choices"] for chunk in plain)  # no usage-only chunk
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in plain)
    assert text == "".join(c["choices"][0]["delta"].get("content") or "" for c in asked[:-1])
    sent = fleet["gamma"].stats().bodies
    assert [b["stream_options"] for b in sent] == [{"include_usage": True}] * 2
    prom = scrape(run.gw)
    for kind, key in (("input", "prompt_tokens"), ("output", "completion_tokens")):
        counted = prom[("gateway_tokens_total", labels(alias="solo", provider="gamma", type=kind))]
        assert counted == 2 * usage[key]  # the same prompt and answer, twice


def test_stream_usage_is_not_asked_of_vendors_that_may_reject_it(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    gw = start_gateway(config_for(fleet, ROUTES, extra=QUIET))  # openai_compatible: off
    assert all(chunk["choices"] for chunk in sse_chunks(gw))
    assert "stream_options" not in fleet["gamma"].stats().bodies[-1]


def test_stream_tokens_through_litellm_are_counted_for_clients_that_did_not_ask(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    routes = "  solo: {fallbacks: [gamma/claude-x]}\n"
    gw = start_gateway(config_for(fleet, routes, extra=QUIET, anthropic=("gamma",)))
    chunks = sse_chunks(gw)
    assert chunks and all(chunk["choices"] for chunk in chunks)
    assert not any(chunk.get("usage") for chunk in chunks)
    prom = scrape(gw)
    for kind in ("input", "output"):
        assert prom[("gateway_tokens_total", labels(alias="solo", provider="gamma", type=kind))] > 0


def test_requests_refused_before_routing_are_counted_and_logged(
    fleet: VendorFleet, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.requests")
    run = instrumented(serve, config_for(fleet, ROUTES, extra=LOGGED))
    url = run.gw.base_url + "/chat/completions"
    sent = [
        httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        httpx.post(
            url, json={"model": "no-such-alias", "messages": [{"role": "user", "content": "x"}]}
        ),
        httpx.post(
            url, json={"model": "no-such-alias", "messages": [{"role": "user", "content": "x"}]}
        ),
        httpx.get(url),
    ]
    assert [r.status_code for r in sent] == [400, 404, 404, 405]
    codes = [r.json()["error"]["code"] for r in sent]
    assert codes == ["invalid_json", "model_not_found", "model_not_found", "method_not_allowed"]
    prom = scrape(run.gw)
    rejected = {k[1]: v for k, v in prom.items() if k[0] == "gateway_rejected_requests_total"}
    assert rejected == {
        labels(endpoint="chat", code="invalid_json"): 1,
        labels(endpoint="chat", code="model_not_found"): 2,
        labels(endpoint="chat", code="method_not_allowed"): 1,
    }
    assert not any(k[0] == "gateway_requests_total" for k in prom)  # none reached a route
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert [(line["status"], line["error_code"]) for line in lines] == list(
        zip([400, 404, 404, 405], codes, strict=True)
    )
    assert [line["request_id"] for line in lines] == [r.headers["x-request-id"] for r in sent]
    assert all(line["outcome"] == "invalid" and line["alias"] is None for line in lines)
    assert "no-such-alias" not in json.dumps(lines)  # a caller's string is no field here


def test_a_bug_in_the_gateway_is_answered_counted_and_logged_once(
    fleet: VendorFleet,
    serve: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception of our own after the vendor answered (planted in the answer's send):
    the client gets an OpenAI 500, and the request is one request, one line, one count."""
    caplog.set_level(logging.INFO, logger="gateway.requests")
    run = instrumented(serve, config_for(fleet, ROUTES, extra=LOGGED))
    real_send_json = responses.send_json

    async def send_json_with_a_bug(send: Any, status: int, body: bytes, headers: Any) -> None:
        if status == 200:
            raise RuntimeError("planted bug")
        await real_send_json(send, status, body, headers)

    monkeypatch.setattr(responses, "send_json", send_json_with_a_bug)
    with pytest.raises(openai.InternalServerError) as raised:
        chat(run.gw)
    error = raised.value.response.json()["error"]
    request_id = raised.value.response.headers["x-request-id"]
    assert error["code"] == "internal_error" and request_id in error["message"]
    assert "planted bug" not in raised.value.response.text  # the cause stays in the log
    assert raised.value.response.headers["x-gateway-route"] == "alpha/gpt-4o-mini=ok"
    (bug,) = [r for r in caplog.records if r.name == "gateway.api"]
    assert request_id in bug.getMessage() and "planted bug" in (bug.exc_text or "")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert [(line["request_id"], line["status"], line["outcome"]) for line in lines] == [
        (request_id, 500, "failed")
    ]
    prom = scrape(run.gw)
    requests = {k: v for k, v in prom.items() if k[0] == "gateway_requests_total"}
    assert requests == {("gateway_requests_total", labels(alias="chat", outcome="failed")): 1}
    served = labels(provider="alpha", deployment="alpha/gpt-4o-mini", outcome="ok", reason="ok")
    assert prom[("gateway_attempts_total", served)] == 1


def test_a_bug_mid_stream_drops_the_connection_and_is_counted_once(
    fleet: VendorFleet,
    serve: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a stream has begun, a bug of ours cannot become an error answer: the
    connection is dropped, so the client sees a broken stream, never a complete one."""
    caplog.set_level(logging.INFO, logger="gateway.requests")
    run = instrumented(serve, config_for(fleet, ROUTES, extra=LOGGED))

    def tail_with_a_bug(self: Relay) -> bytes:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(Relay, "tail", tail_with_a_bug)
    stream = client(run.gw).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "count me"}], stream=True
    )
    with pytest.raises((openai.APIConnectionError, httpx.RemoteProtocolError)):
        for _ in stream:
            pass
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert [(line["status"], line["outcome"]) for line in lines] == [(500, "failed")]
    prom = scrape(run.gw)
    requests = {k: v for k, v in prom.items() if k[0] == "gateway_requests_total"}
    assert requests == {("gateway_requests_total", labels(alias="chat", outcome="failed")): 1}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_client_that_gives_up_cancels_the_vendor_call_and_is_counted_once(
    fleet: VendorFleet, serve: Any, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    """The vendor hangs (first-token timeout 1.5 s) and the client gives up at 0.4 s: the
    upstream call must end with it, not run on to the timeout and fail over for nobody."""
    caplog.set_level(logging.INFO, logger="gateway.requests")
    run = instrumented(serve, config_for(fleet, ROUTES, extra=LOGGED))
    fleet["alpha"].set_fault(FaultSpec(kind="hang"))
    impatient = openai.OpenAI(base_url=run.gw.base_url, api_key="unused", max_retries=0, timeout=0.4)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], stream=stream
        )
    runtime = run.gw.app.state().runtimes["alpha/gpt-4o-mini"]
    while (fleet["alpha"].stats().in_flight or runtime.in_flight) and time.monotonic() < started + 1.2:
        time.sleep(0.02)
    assert fleet["alpha"].stats().in_flight == 0, "the vendor call outlived its client"
    assert runtime.in_flight == 0
    assert time.monotonic() - started < 1.2  # well before the 1.5 s first-token timeout
    assert fleet["beta"].stats().total == 0  # nobody was failed over to

    prom = scrape(run.gw)
    requests = {k: v for k, v in prom.items() if k[0] == "gateway_requests_total"}
    assert requests == {("gateway_requests_total", labels(alias="chat", outcome="cancelled")): 1}
    attempts = {k[1]: v for k, v in prom.items() if k[0] == "gateway_attempts_total"}
    cancelled = labels(
        provider="alpha", deployment="alpha/gpt-4o-mini", outcome="cancelled", reason="cancelled"
    )
    assert attempts == {cancelled: 1}
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    assert [(line["status"], line["outcome"]) for line in lines] == [(499, "cancelled")]
    (attempt,) = [s for s in run.spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert attempt.attributes is not None and attempt.attributes["gateway.outcome"] == "cancelled"
    assert attempt.status.status_code != StatusCode.ERROR  # the caller left; not a vendor fault
