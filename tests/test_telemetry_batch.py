"""TelemetryBatch: one tuple per request, counted and logged a batch at a time, and every
finished request counted by the next metric collection, whichever thread collects."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from gateway.errors import AttemptRecord
from gateway.telemetry import names as n
from gateway.telemetry.batch import BATCH_REQUESTS, TelemetryBatch
from gateway.telemetry.config import TelemetryConfig
from gateway.telemetry.cost import Pricing
from gateway.telemetry.histograms import export_through
from gateway.telemetry.metrics import Metrics
from gateway.telemetry.request_log import LoggerSink, RequestLog, StreamSink

LOGGING = SimpleNamespace(config=SimpleNamespace(telemetry=TelemetryConfig()))


def finished_request(i: int, attempts: list[AttemptRecord] | None = None) -> Any:
    """What the batch reads of a request that failed before any vendor answered."""
    return SimpleNamespace(
        request_id=f"r{i}", route=SimpleNamespace(alias="chat"), endpoint="chat",
        attempts=attempts or [], started=0.0, snapshot=LOGGING, trace=None, body={},
    )  # fmt: skip


def failed_attempt() -> AttemptRecord:
    return AttemptRecord("a/m", "a", "m", "failover", "status_503", 503, "", 1.0)


class Counted:
    """Metrics on a real meter provider, read back through an in-memory reader that
    drains the batch first, as every reader of a gateway does."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        self.metrics = Metrics(provider.get_meter("test"))
        self.provider = provider

    def attach(self, batch: TelemetryBatch) -> None:
        histograms = self.metrics.histograms
        export_through([self.reader], histograms, "test", Resource.create(), batch.drain)

    def values(self, name: str) -> dict[tuple[tuple[str, Any], ...], float]:
        data = self.reader.get_metrics_data()
        found: dict[tuple[tuple[str, Any], ...], float] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            count = value if value is not None else point.count  # type: ignore[attr-defined]
                            found[tuple(sorted(point.attributes.items()))] = count
        return found


def batch_for(counted: Counted, log: RequestLog | None, interval: float = 60) -> TelemetryBatch:
    logs = LOGGING.config.telemetry.logs
    batch = TelemetryBatch(counted.metrics, log, Pricing(dict), lambda: 0.25, lambda: logs, interval)
    counted.attach(batch)
    return batch


async def test_lines_leave_in_one_batch_within_its_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = batch_for(Counted(), RequestLog(StreamSink("stdout")), interval=0.05)
    for i in range(3):
        batch.request_finished(finished_request(i), 503, None, None, False)
    assert capsys.readouterr().out == ""  # nothing built or written per request
    await asyncio.sleep(0.1)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["request_id"] for line in lines] == ["r0", "r1", "r2"]
    assert lines[0]["latency_ms"] == 250.0 and lines[0]["outcome"] == "failed"
    batch.request_finished(finished_request(3), 503, None, None, False)
    batch.close()  # shutdown writes what is left at once
    assert json.loads(capsys.readouterr().out)["request_id"] == "r3"


async def test_a_full_batch_is_written_without_waiting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = batch_for(Counted(), RequestLog(StreamSink("stdout")))
    for i in range(BATCH_REQUESTS + 1):
        batch.request_finished(finished_request(i), 503, None, None, False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == BATCH_REQUESTS  # the full batch, at once; the last one waits
    batch.close()
    assert json.loads(capsys.readouterr().out)["request_id"] == f"r{BATCH_REQUESTS}"


def test_off_the_loop_each_request_is_written_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = batch_for(Counted(), RequestLog(StreamSink("stderr")))
    batch.request_finished(finished_request(1), 503, None, None, False)
    assert json.loads(capsys.readouterr().err)["request_id"] == "r1"


async def test_a_logger_sink_gets_each_line_when_its_request_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.requests")
    batch = batch_for(Counted(), RequestLog(LoggerSink(logging.getLogger("test.requests"))))
    batch.request_finished(finished_request(7), 503, None, None, False)
    batch.request_rejected("bad-1", "chat", 400, "invalid_json")
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert [(line["request_id"], line["outcome"]) for line in lines] == [
        ("r7", "failed"), ("bad-1", "invalid"),
    ]  # fmt: skip


async def test_a_collection_counts_every_request_finished_before_it() -> None:
    """Queued requests, their attempts and refused requests are all in the very next
    collection, though the batch's timer has not fired."""
    counted = Counted()
    batch = batch_for(counted, None)
    for i in range(5):
        batch.request_finished(finished_request(i, [failed_attempt()]), 503, None, None, False)
    batch.request_rejected("bad-1", "chat", 400, "invalid_json")
    requests = counted.values(n.REQUESTS)
    assert requests == {((n.L_ALIAS, "chat"), (n.L_OUTCOME, "failed")): 5}
    attempts = counted.values(n.ATTEMPTS_METRIC)
    assert list(attempts.values()) == [5]
    assert list(counted.values(n.FAILOVERS).values()) == [5]
    assert list(counted.values(n.REJECTED).values()) == [1]
    assert list(counted.values(n.REQUEST_DURATION).values()) == [5]  # histogram count
    batch.request_finished(finished_request(9), 503, None, None, False)
    assert counted.values(n.REQUESTS) == {((n.L_ALIAS, "chat"), (n.L_OUTCOME, "failed")): 6}
    batch.close()


async def test_drains_from_another_thread_lose_and_double_count_nothing() -> None:
    """An OTLP reader collects on its own thread while the loop thread finishes requests
    (and drains full batches): every request is counted exactly once."""
    counted = Counted()
    batch = batch_for(counted, None)
    total = 20_000
    stop = threading.Event()

    def collect_all_the_time() -> None:
        while not stop.is_set():
            counted.reader.get_metrics_data()

    collector = threading.Thread(target=collect_all_the_time)
    collector.start()
    try:
        request = finished_request(0)
        for _ in range(total):  # queued on this thread, drained by full batches and by
            batch.request_finished(request, 503, None, None, False)  # the collector
    finally:
        stop.set()
        collector.join(10)
    assert counted.values(n.REQUESTS) == {((n.L_ALIAS, "chat"), (n.L_OUTCOME, "failed")): total}
    batch.close()
