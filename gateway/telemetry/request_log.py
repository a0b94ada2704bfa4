"""Structured request logs: one JSON line per request.

A line carries the request id, alias, who served it, the attempts (count and the compact
route), status, latency, time to first token, tokens and cost. Prompts are added only
when an operator turns `telemetry.logs.prompts` on; keys and completions never are.

Lines are encoded a batch of requests at a time (batch.py: up to 128 requests, at most
0.25 s apart, and before shutdown) into one buffer, written to stdout or stderr in one
system call. One buffer, not a bytes object per line: keeping thousands of lines alive
until the write made the allocator hand memory back and fault it in again. With
`output: logger` every request is its own batch, and each line goes at once to the
`gateway.requests` logger, for an embedding app.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from gateway.api.responses import route_header
from gateway.telemetry.names import request_outcome

if TYPE_CHECKING:
    from gateway.errors import AttemptRecord
    from gateway.routing import Deployment

LOGGER = "gateway.requests"
MIDDLES_KEPT = 1024  # distinct alias/status/deployment/route runs kept encoded

# The run of a line from `alias` to `route`, which repeats from request to request:
# alias, endpoint, stream, status, deployment, attempts tried, route.
MiddleKey = tuple[str, str, bool, int, "str | None", int, str]

# What a line says of a request, in the order `encode` reads it.
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
    Any,  # the prompt, or PROMPT_OFF (prompt logging was off for this request)
]

PROMPT_OFF = object()  # no "prompt" key; a prompt that is None is logged as null


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


class RequestLog:
    """Lines are added a batch of requests at a time (see batch.py) into one buffer,
    which `flush` hands to the sink in one write."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._utc = UtcClock()
        self._buffer = bytearray()  # encoded lines not written yet
        self._middles: dict[MiddleKey, str] = {}

    def add(self, facts: Facts) -> None:
        self._buffer += self.encode(facts)

    def add_rejected(
        self, request_id: str, endpoint: str, status: int, code: str, ended: float
    ) -> None:
        """A line for a request refused before routing too: one line per request."""
        line = {
            "ts": self._utc.format(ended),
            "event": "request",
            "request_id": request_id,
            "alias": None,
            "endpoint": endpoint,
            "status": status,
            "outcome": "invalid",
            "error_code": code,
        }
        self._buffer += orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)

    def flush(self) -> None:
        if self._buffer:
            out, self._buffer = self._buffer, bytearray()
            self.sink.write(out)

    def close(self) -> None:
        self.flush()
        self.sink.close()

    def encode(self, facts: Facts) -> bytes:
        """One JSON line, newline included. The run from `alias` to `route` repeats from
        request to request (same alias, status, deployment and route), so it is encoded
        once per distinct value and reused; the rest is formatted directly."""
        (t, request_id, alias, endpoint, stream, status, served_by, attempts, latency, cost,
         trace_id, prompt) = facts  # fmt: skip
        tried, ttft = 0, None
        for a in attempts:
            if a.outcome != "skipped":
                tried += 1
                if a.outcome == "ok":
                    ttft = a.duration_ms
        route = route_header(attempts)
        deployment = served_by.id if served_by is not None else None
        key: MiddleKey = (alias, endpoint, stream, status, deployment, tried, route)
        middle = self._middles.get(key)
        if middle is None:
            middle = self._middle(key, served_by)
        # request ids are [A-Za-z0-9._:-] (checked where they come in): nothing to escape
        line = (
            f'{{"ts":"{self._utc.format(t)}","event":"request","request_id":"{request_id}",'
            f'{middle},"latency_ms":{latency * 1000:.2f},'
            f'"ttft_ms":{"null" if ttft is None else ttft}'
        )
        if cost is not None:
            line += f',"input_tokens":{cost[0]},"output_tokens":{cost[1]},"cost_usd":{cost[2]}'
        if trace_id:
            line += f',"trace_id":"{trace_id:032x}"'
        if prompt is not PROMPT_OFF:
            line += ',"prompt":' + orjson.dumps(prompt).decode()
        return (line + "}\n").encode()

    def _middle(self, key: MiddleKey, served_by: Deployment | None) -> str:
        alias, endpoint, stream, status, deployment, tried, route = key
        fields = {
            "alias": alias,
            "endpoint": endpoint,
            "stream": stream,
            "status": status,
            "outcome": request_outcome(status, served_by is not None),
            "provider": served_by.provider if served_by is not None else None,
            "deployment": deployment,
            "attempts": tried,
            "route": route,
        }
        middle = orjson.dumps(fields).decode()[1:-1]
        if len(self._middles) >= MIDDLES_KEPT:  # bounded, though routes and statuses are few
            self._middles.clear()
        self._middles[key] = middle
        return middle


def sink_for(output: str) -> Sink:
    if output == "logger":
        logger = logging.getLogger(LOGGER)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # INFO lines must pass a WARNING root
        return LoggerSink(logger)
    return StreamSink(output)
