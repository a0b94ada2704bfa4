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


def _overrides(observer: Observer, hook: str) -> bool:
    return getattr(type(observer), hook) is not getattr(Observer, hook)


class Observers(Observer):
    """Fans every hook out to the observers that override it: a no-op hook is not called
    (the request path calls these once or more per request)."""

    def __init__(self, *observers: Observer) -> None:
        self._all: list[Observer] = []
        for o in observers:
            self.add(o)

    @property
    def observers(self) -> tuple[Observer, ...]:
        return tuple(self._all)

    def add(self, observer: Observer, first: bool = False) -> None:
        self._all.insert(0 if first else len(self._all), observer)
        every = self._all
        self._started = [o.request_started for o in every if _overrides(o, "request_started")]
        self._attempt = [o.attempt_finished for o in every if _overrides(o, "attempt_finished")]
        self._finished = [o.request_finished for o in every if _overrides(o, "request_finished")]
        self._rejected = [o.request_rejected for o in every if _overrides(o, "request_rejected")]

    def request_started(self, ctx: RequestContext) -> None:
        for hook in self._started:
            hook(ctx)

    def attempt_finished(self, ctx: RequestContext, record: AttemptRecord) -> None:
        for hook in self._attempt:
            hook(ctx, record)

    def request_finished(
        self,
        ctx: RequestContext,
        status: int,
        served_by: Deployment | None,
        usage: dict[str, Any] | None,
        stream: bool,
    ) -> None:
        for hook in self._finished:
            hook(ctx, status, served_by, usage, stream)

    def request_rejected(self, request_id: str, endpoint: str, status: int, code: str) -> None:
        for hook in self._rejected:
            hook(request_id, endpoint, status, code)
