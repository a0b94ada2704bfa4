"""Hooks the request path calls, as no-op methods (pybreaker's listener pattern).

Telemetry, passive health and the status endpoint subclass `Observer`; the request path
never knows who listens. Hooks must be cheap and must not raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.errors import AttemptRecord
    from gateway.failover import RequestContext
    from gateway.routing import Deployment


class Observer:
    def request_started(self, ctx: RequestContext) -> None:
        """A request passed validation and has a route."""

    def attempt_finished(self, ctx: RequestContext, record: AttemptRecord) -> None:
        """One attempt ended (or a deployment was skipped). For a stream's successful
        attempt, `record.duration_ms` is the time to first token."""

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        """The client got its full answer or error (`status` as sent; a stream that ended
        with an error event reports 502)."""

    def request_rejected(self, request_id: str, endpoint: str, status: int, code: str) -> None:
        """A request refused before it had a route: a bad body, an unknown model, the wrong
        method. `code` is the OpenAI error code sent (a bounded set)."""


class Observers(Observer):
    """Fans every hook out to several observers."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = list(observers)

    def request_started(self, ctx: RequestContext) -> None:
        for o in self.observers:
            o.request_started(ctx)

    def attempt_finished(self, ctx: RequestContext, record: AttemptRecord) -> None:
        for o in self.observers:
            o.attempt_finished(ctx, record)

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        for o in self.observers:
            o.request_finished(ctx, status, served_by, usage, stream)

    def request_rejected(self, request_id: str, endpoint: str, status: int, code: str) -> None:
        for o in self.observers:
            o.request_rejected(request_id, endpoint, status, code)
