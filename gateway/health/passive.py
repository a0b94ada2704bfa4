"""Passive health: every finished attempt of real traffic feeds its deployment's health."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gateway.health.outlier import Verdict, verdict
from gateway.observe import Observer

if TYPE_CHECKING:
    from gateway.errors import AttemptRecord
    from gateway.failover import RequestContext
    from gateway.routing import Deployment
    from gateway.state import GatewayState

log = logging.getLogger("gateway.health")


class PassiveHealth(Observer):
    def __init__(self, state: GatewayState) -> None:
        self._state = state

    def attempt_finished(self, ctx: RequestContext, record: AttemptRecord) -> None:
        if record.outcome == "skipped":
            return
        runtime = self._state.runtimes.get(record.deployment)
        if runtime is None:
            return
        outcome = verdict(record.outcome, record.reason)
        health = runtime.health
        if outcome is Verdict.FAILURE and _started_before(ctx, record):
            health.calls -= 1  # a stream that broke after its first token: one failed call
        ejected = health.record_attempt(
            outcome,
            record.reason,
            record.message,
            record.duration_ms,
            self._state.clock(),
            ctx.snapshot.config.health.outlier,
        )
        if ejected:
            log.warning("deployment %s %s", record.deployment, health.ejected_why)

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        if served_by is None:
            return
        runtime = self._state.runtimes.get(served_by.id)
        if runtime is not None:
            elapsed_ms = (self._state.clock() - ctx.started) * 1000
            alpha = ctx.snapshot.config.health.outlier.ttft_ewma_alpha
            runtime.health.record_latency(elapsed_ms, alpha)


def _started_before(ctx: RequestContext, record: AttemptRecord) -> bool:
    """True when this request already had an `ok` first token from the same deployment."""
    attempts = ctx.attempts
    return any(a.outcome == "ok" and a.deployment == record.deployment for a in attempts[:-1])
