"""Traces: a server span per request, a client span per attempt (GenAI conventions).

The caller's `traceparent` / `tracestate` are continued. Attempt spans are opened when
the attempt is reported, back-dated by its duration; a served attempt's span stays open
until the request finishes (for a stream, until its last chunk), then carries the
token usage. A skipped deployment is an event on the server span, not a span.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.observe import Observer
from gateway.telemetry import names as n
from gateway.telemetry.cost import Pricing

if TYPE_CHECKING:
    from gateway.errors import AttemptRecord
    from gateway.failover import RequestContext
    from gateway.routing import Deployment

_TRACE_HEADERS = (b"traceparent", b"tracestate")


class RequestSpans:
    __slots__ = ("attempts", "context", "open", "open_deployment", "server")

    def __init__(self, server: Span) -> None:
        self.server = server
        self.context: Context = trace.set_span_in_context(server)
        self.attempts = 0
        self.open: Span | None = None  # the served attempt, until the request ends
        self.open_deployment = ""


def trace_carrier(headers: Any) -> dict[str, str]:
    carrier = {}
    for key, value in headers:
        if key in _TRACE_HEADERS:
            carrier[key.decode()] = value.decode("latin-1")
    return carrier


class TracingObserver(Observer):
    def __init__(self, tracer: Tracer, pricing: Pricing) -> None:
        self._tracer = tracer
        self._pricing = pricing
        self._propagator = TraceContextTextMapPropagator()

    def request_started(self, ctx: RequestContext) -> None:
        carrier = trace_carrier(ctx.headers)
        parent = self._propagator.extract(carrier) if carrier else None
        alias = ctx.route.alias
        stream = ctx.body.get("stream") is True
        span = self._tracer.start_span(
            f"{ctx.endpoint} {alias}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                n.OPERATION: ctx.endpoint,
                n.REQUEST_MODEL: alias,
                n.ALIAS: alias,
                n.REQUEST_ID: ctx.request_id,
                n.HTTP_METHOD: "POST",
                n.REQUEST_STREAM: stream,
            },
        )
        ctx.trace = RequestSpans(span)

    def attempt_finished(self, ctx: RequestContext, record: AttemptRecord) -> None:
        spans: RequestSpans | None = ctx.trace
        if spans is None:
            return
        if record.outcome == "skipped":
            spans.server.add_event(
                n.SKIPPED_EVENT, {n.DEPLOYMENT: record.deployment, n.REASON: record.reason}
            )
            return
        end = time.time_ns()
        if spans.open is not None and spans.open_deployment == record.deployment:
            _fail(spans.open, record)  # a served stream broke after its first token
            spans.open.end(end)
            spans.open = None
            return
        spans.attempts += 1
        kind = ctx.snapshot.config.providers[record.provider].kind
        genai = n.GENAI_PROVIDER.get(kind, kind)
        span = self._tracer.start_span(
            f"{ctx.endpoint} {record.model}",
            context=spans.context,
            kind=SpanKind.CLIENT,
            start_time=end - int(record.duration_ms * 1_000_000),
            attributes={
                n.OPERATION: ctx.endpoint,
                n.SYSTEM: genai,
                n.PROVIDER_NAME: genai,
                n.REQUEST_MODEL: record.model,
                n.PROVIDER: record.provider,
                n.DEPLOYMENT: record.deployment,
                n.ATTEMPT: spans.attempts,
                n.OUTCOME: record.outcome,
                n.REASON: record.reason,
            },
        )
        if record.status is not None:
            span.set_attribute(n.HTTP_STATUS, record.status)
        if record.outcome == "ok":
            span.set_attribute(n.TTFT_MS, record.duration_ms)
            spans.open, spans.open_deployment = span, record.deployment
            return
        if record.outcome != "cancelled":  # the caller left: no fault of the vendor's
            _fail(span, record)
        span.end(end)

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        spans: RequestSpans | None = ctx.trace
        if spans is None:
            return
        server = spans.server
        server.set_attribute(n.HTTP_STATUS, status)
        server.set_attribute(n.ATTEMPTS, spans.attempts)
        server.set_attribute(n.OUTCOME, n.request_outcome(status, served_by is not None))
        if served_by is not None:
            self._served(ctx, spans, served_by, usage)
        if status >= 500:
            server.set_status(StatusCode.ERROR, f"HTTP {status}")
            server.set_attribute(n.ERROR_TYPE, str(status))
        if spans.open is not None:
            spans.open.end()
            spans.open = None
        server.end()

    def _served(
        self,
        ctx: RequestContext,
        spans: RequestSpans,
        served_by: Deployment,
        usage: dict[str, Any] | None,
    ) -> None:
        snapshot = ctx.snapshot
        tokens_in, tokens_out, usd = self._pricing.cost(
            snapshot.config, snapshot.version, served_by.id, usage
        )
        served: dict[str, str | int | float] = {
            n.RESPONSE_MODEL: served_by.model,
            n.PROVIDER: served_by.provider,
            n.DEPLOYMENT: served_by.id,
            n.INPUT_TOKENS: tokens_in,
            n.OUTPUT_TOKENS: tokens_out,
            n.COST_USD: usd,
        }
        spans.server.set_attributes(served)
        if spans.open is not None:
            spans.open.set_attributes(served)


def _fail(span: Span, record: AttemptRecord) -> None:
    span.set_attribute(n.ERROR_TYPE, record.reason)
    span.set_status(StatusCode.ERROR, record.reason)
