"""Structured request logs: one JSON line per request.

A line carries the request id, alias, who served it, the attempts (count and the compact
route), status, latency, time to first token, tokens and cost. Prompts are added only
when an operator turns `telemetry.logs.prompts` on; keys and completions never are.

Lines go to stdout or stderr in batches (one write at most every 0.25 s, and at
shutdown), so a busy gateway does not pay a system call per request; or, with
`output: logger`, one by one to the `gateway.requests` logger for an embedding app.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gateway.api.responses import route_header
from gateway.observe import Observer
from gateway.telemetry.cost import Pricing
from gateway.telemetry.names import request_outcome

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.failover import RequestContext
    from gateway.routing import Deployment

LOGGER = "gateway.requests"
FLUSH_SECONDS = 0.25


class Sink(Protocol):
    def write(self, line: bytes) -> None: ...

    def close(self) -> None: ...


class StreamSink:
    """Batches lines for stdout or stderr; flushes from a loop timer, or at once off-loop."""

    def __init__(self, stream_name: str, interval: float = FLUSH_SECONDS) -> None:
        self.stream_name = stream_name
        self.interval = interval
        self._lines: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def write(self, line: bytes) -> None:
        self._lines.append(line)
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._timer = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        self._timer = None
        if not self._lines:
            return
        text = b"\n".join(self._lines).decode() + "\n"
        self._lines.clear()
        stream = sys.stdout if self.stream_name == "stdout" else sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream must not break serving

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()


class LoggerSink:
    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def write(self, line: bytes) -> None:
        self._logger.info(line.decode())

    def close(self) -> None:
        pass


class UtcClock:
    """ISO-8601 UTC timestamps with milliseconds; the seconds part is formatted once."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        t = time.time()
        second = int(t)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((t - second) * 1000):03d}Z"


class RequestLog(Observer):
    def __init__(
        self,
        sink: Sink,
        pricing: Pricing,
        clock: Callable[[], float],
        prompts: bool = False,
    ) -> None:
        self.sink = sink
        self._pricing = pricing
        self._clock = clock
        self._prompts = prompts
        self._utc = UtcClock()

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        self.sink.write(orjson.dumps(self.line(ctx, status, served_by, usage, stream)))

    def line(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> dict[str, Any]:
        tried, ttft = 0, None
        for a in ctx.attempts:  # one pass: this runs for every request
            if a.outcome != "skipped":
                tried += 1
                if a.outcome == "ok":
                    ttft = a.duration_ms
        line: dict[str, Any] = {
            "ts": self._utc.now(),
            "event": "request",
            "request_id": ctx.request_id,
            "alias": ctx.route.alias,
            "endpoint": ctx.endpoint,
            "stream": stream,
            "status": status,
            "outcome": request_outcome(status, served_by is not None),
            "provider": served_by.provider if served_by else None,
            "deployment": served_by.id if served_by else None,
            "attempts": tried,
            "route": route_header(ctx.attempts),
            "latency_ms": round((self._clock() - ctx.started) * 1000, 2),
            "ttft_ms": ttft,
        }
        if served_by is not None:
            snapshot = ctx.snapshot
            tokens_in, tokens_out, usd = self._pricing.cost(
                snapshot.config, snapshot.version, served_by.id, usage
            )
            line.update(input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=usd)
        if ctx.trace is not None:
            span_context = ctx.trace.server.get_span_context()
            line["trace_id"] = format(span_context.trace_id, "032x")
        if self._prompts:
            line["prompt"] = ctx.body.get("messages", ctx.body.get("input"))
        return line


def sink_for(output: str) -> Sink:
    if output == "logger":
        logger = logging.getLogger(LOGGER)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # INFO lines must pass a WARNING root
        return LoggerSink(logger)
    return StreamSink(output)
