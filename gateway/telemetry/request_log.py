"""Structured request logs: one JSON line per request.

A line carries the request id, alias, who served it, the attempts (count and the compact
route), status, latency, time to first token, tokens and cost. Prompts are added only
when an operator turns `telemetry.logs.prompts` on; keys and completions never are.

For stdout and stderr the request path only notes the request's facts (one tuple); the
lines are built and written in batches of up to 128 lines, at most 0.25 s apart and at
shutdown, so a busy gateway pays a system call per 128 requests, not per request. The
bound matters as much as the batching: holding thousands of requests' facts (or lines)
for 0.25 s made the allocator hand memory back and fault it in again, which cost more
than building the lines. With `output: logger` each line goes at once to the
`gateway.requests` logger, for an embedding app.
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

    from gateway.errors import AttemptRecord
    from gateway.failover import RequestContext
    from gateway.routing import Deployment

LOGGER = "gateway.requests"
FLUSH_SECONDS = 0.25
FLUSH_LINES = 128  # a batch this long is written at once, before its time is up

# What the request path keeps of a request until its line is built (a tuple: cheapest).
Facts = tuple[
    float,  # time.time() at the end
    str,  # request id
    str,  # alias
    str,  # endpoint
    bool,  # stream
    int,  # status
    "Deployment | None",  # served by
    "list[AttemptRecord]",
    float,  # latency, seconds
    "tuple[int, int, float] | None",  # input tokens, output tokens, USD, when served
    int,  # trace id, 0 when not traced
    Any,  # the prompt, when prompt logging is on
]


class Sink(Protocol):
    batched: bool  # False: write each line as it comes

    def write(self, lines: bytes | bytearray) -> None:
        """One or more complete lines, each ending in a newline."""

    def close(self) -> None: ...


class StreamSink:
    """stdout or stderr: each batch of lines in one write."""

    batched = True

    def __init__(self, stream_name: str) -> None:
        self.stream_name = stream_name

    def write(self, lines: bytes | bytearray) -> None:
        if not lines:
            return
        stream = sys.stdout if self.stream_name == "stdout" else sys.stderr
        try:
            binary = getattr(stream, "buffer", None)
            if binary is not None:
                binary.write(lines)
            else:  # a text-only stream (a test's capture, an embedding app)
                stream.write(bytes(lines).decode())
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream must not break serving

    def close(self) -> None:
        pass


class LoggerSink:
    batched = False

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def write(self, lines: bytes | bytearray) -> None:
        for line in bytes(lines).decode().splitlines():
            self._logger.info(line)

    def close(self) -> None:
        pass


_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


class UtcClock:
    """ISO-8601 UTC timestamps with milliseconds; the seconds part is formatted once."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, t: float) -> str:
        second = int(t)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._prefix + _MILLIS[int((t - second) * 1000)]


class RequestLog(Observer):
    def __init__(
        self,
        sink: Sink,
        pricing: Pricing,
        clock: Callable[[], float],
        prompts: bool = False,
        interval: float = FLUSH_SECONDS,
    ) -> None:
        self.sink = sink
        self._pricing = pricing
        self._clock = clock
        self._prompts = prompts
        self._interval = interval
        self._utc = UtcClock()
        self._pending: list[Facts] = []
        self._timer: asyncio.TimerHandle | None = None

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        trace = ctx.trace
        cost = None
        if served_by is not None:  # the metrics observer just asked: a cache hit
            snapshot = ctx.snapshot
            cost = self._pricing.cost(snapshot.config, snapshot.version, served_by.id, usage)
        facts: Facts = (
            time.time(),
            ctx.request_id,
            ctx.route.alias,
            ctx.endpoint,
            stream,
            status,
            served_by,
            ctx.attempts,
            self._clock() - ctx.started,
            cost,
            trace.server.get_span_context().trace_id if trace is not None else 0,
            ctx.body.get("messages", ctx.body.get("input")) if self._prompts else None,
        )
        if not self.sink.batched:
            self.sink.write(orjson.dumps(self.line(facts), option=orjson.OPT_APPEND_NEWLINE))
            return
        pending = self._pending
        pending.append(facts)
        if len(pending) >= FLUSH_LINES:
            if self._timer is not None:
                self._timer.cancel()
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        self._timer = None
        pending, self._pending = self._pending, []
        # One growing buffer: each line's bytes are freed at once and their memory reused.
        # Keeping thousands of separate bytes objects alive until the write cost 5 us a
        # line in fresh-memory page faults, ten times the JSON encoding itself.
        out = bytearray()
        line, dumps, newline = self.line, orjson.dumps, orjson.OPT_APPEND_NEWLINE
        for facts in pending:
            out += dumps(line(facts), option=newline)
        self.sink.write(out)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()
        self.sink.close()

    def line(self, facts: Facts) -> dict[str, Any]:
        (t, request_id, alias, endpoint, stream, status, served_by, attempts, latency, cost,
         trace_id, prompt) = facts  # fmt: skip
        tried, ttft = 0, None
        for a in attempts:
            if a.outcome != "skipped":
                tried += 1
                if a.outcome == "ok":
                    ttft = a.duration_ms
        line: dict[str, Any] = {
            "ts": self._utc.format(t),
            "event": "request",
            "request_id": request_id,
            "alias": alias,
            "endpoint": endpoint,
            "stream": stream,
            "status": status,
            "outcome": request_outcome(status, served_by is not None),
            "provider": served_by.provider if served_by else None,
            "deployment": served_by.id if served_by else None,
            "attempts": tried,
            "route": route_header(attempts),
            "latency_ms": round(latency * 1000, 2),
            "ttft_ms": ttft,
        }
        if cost is not None:
            line["input_tokens"], line["output_tokens"], line["cost_usd"] = cost
        if trace_id:
            line["trace_id"] = format(trace_id, "032x")
        if self._prompts:
            line["prompt"] = prompt
        return line


def sink_for(output: str) -> Sink:
    if output == "logger":
        logger = logging.getLogger(LOGGER)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # INFO lines must pass a WARNING root
        return LoggerSink(logger)
    return StreamSink(output)
