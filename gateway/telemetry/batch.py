"""Metrics and request-log lines, counted a batch of finished requests at a time.

On the request path telemetry does one thing: it appends one tuple of what the request
did to a queue. The queue is drained when it holds `BATCH_REQUESTS` requests, at most
`BATCH_SECONDS` after the first of them, before every metric collection (so a scrape
counts every request that has finished) and at shutdown. Draining runs the same few
functions over a hundred requests in a row: measured under load, counting and encoding
in place, one request at a time among the rest of each request's work, cost 4-5 times
what the same code costs hot (cold instruction and data caches), and that was most of
telemetry's share of a request.

Drains may come from two threads: the event loop (full queue, timer) and a metric
reader's thread (an OTLP exporter collects on its own). A lock keeps drains apart; the
queue is a deque, whose append and popleft are atomic, so a request finishing during a
drain is counted by that drain or the next one, never lost or counted twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.observe import Observer
from gateway.telemetry.config import LogsConfig
from gateway.telemetry.cost import Pricing
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.request_log import PROMPT_OFF, RequestLog

if TYPE_CHECKING:
    from gateway.errors import AttemptRecord
    from gateway.failover import RequestContext
    from gateway.routing import Deployment
    from gateway.state import Snapshot

BATCH_REQUESTS = 128
BATCH_SECONDS = 0.25

# What a batch needs of a finished request: not the request's context, which would keep
# its body, headers and their objects alive until the drain.
Finished = tuple[
    str,  # request id
    str,  # alias
    str,  # endpoint
    bool,  # stream (the answer was an event stream)
    bool,  # the body asked for a stream (time to first token is recorded for those)
    int,  # status
    "Deployment | None",  # served by
    "list[AttemptRecord]",
    Any,  # usage
    "Snapshot",  # the config it was served under (its prices)
    float,  # latency, seconds
    float,  # time.time() at the end
    int,  # trace id, 0 when not traced
    Any,  # the prompt, or PROMPT_OFF
    bool,  # a log line for it (telemetry.logs.requests of the config that served it)
]
Rejected = tuple[str, str, int, str, float, bool]  # id, endpoint, status, code, time, a line


class TelemetryBatch(Observer):
    def __init__(
        self,
        metrics: Metrics,
        log: RequestLog | None,
        pricing: Pricing,
        clock: Callable[[], float],
        live_logs: Callable[[], LogsConfig],
        interval: float = BATCH_SECONDS,
    ) -> None:
        """`live_logs`: the live config's `telemetry.logs`, for requests refused before
        they had a config of their own."""
        self._metrics = metrics
        self._log = log
        self._pricing = pricing
        self._clock = clock
        self._interval = interval
        self._live_logs = live_logs
        # An unbatched sink (the logging module) expects each line when its request ends.
        self._size = BATCH_REQUESTS if log is None or log.sink.batched else 1
        self._finished: deque[Finished] = deque()
        self._rejected: deque[Rejected] = deque()
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        queue, trace, body = self._finished, ctx.trace, ctx.body
        logs = ctx.snapshot.config.telemetry.logs  # these two follow reloads at once
        queue.append(
            (
                ctx.request_id,
                ctx.route.alias,
                ctx.endpoint,
                stream,
                body.get("stream") is True,
                status,
                served_by,
                ctx.attempts,
                usage,
                ctx.snapshot,
                self._clock() - ctx.started,
                time.time(),
                trace.server.get_span_context().trace_id if trace is not None else 0,
                body.get("messages", body.get("input")) if logs.prompts else PROMPT_OFF,
                logs.requests,
            )
        )
        self._queued(len(queue))

    def request_rejected(self, request_id: str, endpoint: str, status: int, code: str) -> None:
        logged = self._live_logs().requests
        self._rejected.append((request_id, endpoint, status, code, time.time(), logged))
        self._queued(len(self._rejected))

    def _queued(self, length: int) -> None:
        if length >= self._size:
            self.drain()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a test, an embedding app): nothing to wait for
                self.drain()
                return
            self._timer = loop.call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.drain()

    def drain(self) -> None:
        """Count and log every request queued so far; write the log lines."""
        with self._lock:
            self._drain_finished()
            rejected, metrics, log = self._rejected, self._metrics, self._log
            for _ in range(len(rejected)):
                request_id, endpoint, status, code, ended, logged = rejected.popleft()
                metrics.count_rejected(endpoint, code)
                if log is not None and logged:
                    log.add_rejected(request_id, endpoint, status, code, ended)
            if log is not None:
                log.flush()

    def _drain_finished(self) -> None:
        finished, metrics, log, pricing = self._finished, self._metrics, self._log, self._pricing
        for _ in range(len(finished)):  # only drains remove, so this many are there
            (request_id, alias, endpoint, stream, asked_stream, status, served_by, attempts,
             usage, snapshot, latency, ended, trace_id, prompt, logged,
             ) = finished.popleft()  # fmt: skip
            cost = None
            if served_by is not None:  # no usage: the log says 0 tokens, metrics add none
                cost = pricing.cost(snapshot.config, snapshot.version, served_by.id, usage)
            metrics.count(alias, asked_stream, attempts, status, served_by, cost, latency)
            if log is not None and logged:
                log.add(
                    (ended, request_id, alias, endpoint, stream, status, served_by, attempts,
                     latency, cost, trace_id, prompt)
                )  # fmt: skip

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.drain()
        if self._log is not None:
            self._log.close()
