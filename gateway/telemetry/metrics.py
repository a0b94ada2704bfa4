"""Metrics through the OpenTelemetry SDK, with as little work per request as we can.

A synchronous OpenTelemetry instrument costs 6-9 us per call (measured: attribute
cleaning, hashing, view matching, locking), so nothing here calls one per request.
Counters are plain dicts keyed by their bounded label values, read by observable
counters at collection time; the two histograms (request duration, and time to first
token of streams) are `LabelledHistogram`s handed to every metric reader at collection
(see histograms.py). Gauges (breaker and deployment state, in-flight, alias
availability) and the health counters (probes, ejections) are read from the live state
at collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from gateway.telemetry import names as n
from gateway.telemetry.histograms import LabelledHistogram

if TYPE_CHECKING:
    from gateway.errors import AttemptRecord
    from gateway.routing import Deployment

Labels = tuple[str, ...]
Callback = Callable[[CallbackOptions], Iterable[Observation]]


def _counted(counts: dict[Labels, float], keys: Sequence[str]) -> Callback:
    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(v, dict(zip(keys, k, strict=True))) for k, v in dict(counts).items()]

    return observe


class Metrics:
    """The counters and histograms, fed a batch of finished requests at a time."""

    def __init__(self, meter: Meter) -> None:
        self.requests: dict[Labels, float] = {}  # alias, outcome
        self.attempts: dict[Labels, float] = {}  # provider, deployment, outcome, reason
        self.failovers: dict[Labels, float] = {}  # alias, provider, reason
        self.tokens: dict[Labels, float] = {}  # alias, provider, type
        self.cost: dict[Labels, float] = {}  # alias, provider
        self.transitions: dict[Labels, float] = {}  # deployment, provider, state
        self.rejected: dict[Labels, float] = {}  # endpoint, code
        counters = (
            (n.REQUESTS, self.requests, (n.L_ALIAS, n.L_OUTCOME), "Requests by alias and outcome"),
            (n.ATTEMPTS_METRIC, self.attempts, (n.L_PROVIDER, n.L_DEPLOYMENT, n.L_OUTCOME,
             n.L_REASON), "Attempts (and skipped deployments) by outcome and reason"),
            (n.FAILOVERS, self.failovers, (n.L_ALIAS, n.L_PROVIDER, n.L_REASON),
             "Attempts that failed over to the next deployment, by reason"),
            (n.TOKENS, self.tokens, (n.L_ALIAS, n.L_PROVIDER, n.L_TYPE),
             "Tokens in (type=input) and out (type=output) of served answers"),
            (n.COST, self.cost, (n.L_ALIAS, n.L_PROVIDER),
             "Estimated cost in USD (litellm price map, config overrides)"),
            (n.BREAKER_TRANSITIONS, self.transitions, (n.L_DEPLOYMENT, n.L_PROVIDER, n.L_STATE),
             "Circuit breaker transitions, by the state entered"),
            (n.REJECTED, self.rejected, (n.L_ENDPOINT, n.L_CODE),
             "Requests refused before routing (bad body, unknown model), by error code"),
        )  # fmt: skip
        for name, counts, keys, description in counters:
            meter.create_observable_counter(
                name, callbacks=[_counted(counts, keys)], description=description
            )
        self.duration = LabelledHistogram(
            n.REQUEST_DURATION,
            "s",
            "Request duration as the client saw it, by alias and outcome",
            (n.L_ALIAS, n.L_OUTCOME),
            n.DURATION_BUCKETS,
        )
        self.ttft = LabelledHistogram(
            n.TTFT,
            "s",
            "Time to first token of served streams",
            (n.L_ALIAS, n.L_PROVIDER),
            n.DURATION_BUCKETS,
        )
        self.histograms = (self.duration, self.ttft)

    def count(
        self,
        alias: str,
        stream: bool,
        records: list[AttemptRecord],
        status: int,
        served_by: Deployment | None,
        cost: tuple[int, int, float] | None,
        latency: float,
    ) -> None:
        """One finished request and its attempts (`stream`: the body asked for a stream;
        `cost`: tokens in, out and USD of the served answer, None when nothing was
        served)."""
        attempts = self.attempts
        for record in records:
            key: Labels = (record.provider, record.deployment, record.outcome, record.reason)
            attempts[key] = attempts.get(key, 0) + 1
            if record.outcome == "failover":
                key = (alias, record.provider, record.reason)
                self.failovers[key] = self.failovers.get(key, 0) + 1
            elif record.outcome == "ok" and stream:
                self.ttft.record((alias, record.provider), record.duration_ms / 1000)
        outcome = n.request_outcome(status, served_by is not None)
        key = (alias, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.duration.record(key, latency)
        if served_by is None or cost is None:
            return
        tokens_in, tokens_out, usd = cost
        provider = served_by.provider
        for kind, tokens in (("input", tokens_in), ("output", tokens_out)):
            if tokens:
                key = (alias, provider, kind)
                self.tokens[key] = self.tokens.get(key, 0) + tokens
        if usd:
            key = (alias, provider)
            self.cost[key] = self.cost.get(key, 0.0) + usd

    def count_rejected(self, endpoint: str, code: str) -> None:
        key = (endpoint, code)
        self.rejected[key] = self.rejected.get(key, 0) + 1

    def on_breaker_change(self, deployment_id: str, old: str, new: str) -> None:
        key = (deployment_id, deployment_id.split("/", 1)[0], new.replace("-", "_"))
        self.transitions[key] = self.transitions.get(key, 0) + 1
