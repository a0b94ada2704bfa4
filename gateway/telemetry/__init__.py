"""Telemetry: OpenTelemetry traces and metrics, Prometheus `/metrics`, JSON request logs.

config.py       the `telemetry:` section of providers.yaml, per-deployment prices
names.py        the name of every span, metric and attribute
cost.py         prices per deployment from litellm's price map and config overrides
setup.py        Telemetry: providers, exporters, the observers and the /metrics route
metrics.py      an Observer that counts requests, attempts, failovers, tokens and cost
gauges.py       instruments read from the live state at collection (breakers, health)
tracing.py      an Observer that records a server span per request, a span per attempt
request_log.py  an Observer that writes one JSON line per request
"""
