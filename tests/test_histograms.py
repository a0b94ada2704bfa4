"""LabelledHistogram and its export through OpenTelemetry metric readers (no sockets)."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
)
from opentelemetry.sdk.resources import Resource

from gateway.telemetry.histograms import LabelledHistogram, export_through

BOUNDS = (0.1, 1.0, 10.0)


def histogram() -> LabelledHistogram:
    return LabelledHistogram("test.duration", "s", "a test histogram", ("alias",), BOUNDS)


def collected(reader: InMemoryMetricReader) -> dict[Any, HistogramDataPoint]:
    data = reader.get_metrics_data()
    out = {}
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for p in metric.data.data_points:
                    if isinstance(p, HistogramDataPoint):
                        out[(scope.scope.name, metric.name, p.attributes["alias"])] = p
    return out


def test_record_buckets_values_as_prometheus_le_does() -> None:
    h = histogram()
    for value in (0.05, 0.1, 0.5, 1.0, 3.0, 10.0, 99.0):
        h.record(("chat",), value)
    series = h.series[("chat",)]
    assert series.counts == [2, 2, 2, 1]  # <=0.1, <=1, <=10, +Inf
    assert series.count == 7
    assert series.sum == 0.05 + 0.1 + 0.5 + 1.0 + 3.0 + 10.0 + 99.0
    assert (series.min, series.max) == (0.05, 99.0)


def test_cumulative_reader_sees_every_record_under_the_meter_scope() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({}))
    counter = provider.get_meter("gateway").create_counter("test.count")
    h = histogram()
    export_through([reader], [h], "gateway", provider._sdk_config.resource)
    counter.add(1)
    h.record(("chat",), 0.5)
    h.record(("embed",), 20.0)
    first = collected(reader)
    assert first[("gateway", "test.duration", "chat")].bucket_counts == [0, 1, 0, 0]
    assert first[("gateway", "test.duration", "embed")].bucket_counts == [0, 0, 0, 1]
    assert first[("gateway", "test.duration", "chat")].explicit_bounds == BOUNDS
    data = reader.get_metrics_data()
    assert data is not None
    (scope,) = data.resource_metrics[0].scope_metrics  # merged into the meter's own scope
    assert {m.name for m in scope.metrics} == {"test.count", "test.duration"}
    h.record(("chat",), 0.05)
    again = collected(reader)[("gateway", "test.duration", "chat")]
    assert (again.count, again.bucket_counts) == (2, [1, 1, 0, 0])
    assert (again.min, again.max) == (0.05, 0.5)
    provider.shutdown()


def test_delta_reader_sees_only_what_came_since_its_last_collection() -> None:
    delta = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    cumulative = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[delta, cumulative])
    h = histogram()
    export_through([delta, cumulative], [h], "gateway", Resource.create({}))
    h.record(("chat",), 0.5)
    h.record(("chat",), 2.0)
    assert collected(delta)[("gateway", "test.duration", "chat")].count == 2
    h.record(("chat",), 2.0)
    point = collected(delta)[("gateway", "test.duration", "chat")]
    assert (point.count, point.sum, point.bucket_counts) == (1, 2.0, [0, 0, 1, 0])
    assert collected(delta) == {}  # nothing new: no point at all
    assert collected(cumulative)[("gateway", "test.duration", "chat")].count == 3
    provider.shutdown()


def test_a_reader_with_no_other_metrics_still_gets_the_histograms() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    h = histogram()
    export_through([reader], [h], "gateway", Resource.create({"service.name": "t"}))
    assert collected(reader) == {}
    h.record(("chat",), 1.0)
    data = reader.get_metrics_data()
    assert data is not None
    assert data.resource_metrics[0].resource.attributes["service.name"] == "t"
    assert collected(reader)[("gateway", "test.duration", "chat")].bucket_counts == [0, 1, 0, 0]
    provider.shutdown()
