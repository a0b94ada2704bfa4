"""Telemetry: OpenTelemetry traces and metrics, Prometheus `/metrics`, JSON request logs.

config.py       the `telemetry:` section of providers.yaml, per-deployment prices
names.py        the name of every span, metric and attribute
cost.py         prices per deployment from litellm's price map and config overrides
setup.py        Telemetry: providers, exporters, the observers and the /metrics route
batch.py        the one request-path Observer: queues each finished request, counts and logs
                a batch at a time (and before every metric collection)
metrics.py      counters of requests, attempts, failovers, tokens and cost; two histograms
gauges.py       instruments read from the live state at collection (breakers, health)
tracing.py      an Observer that records a server span per request, a span per attempt
request_log.py  one JSON line per request, written a batch at a time
"""
