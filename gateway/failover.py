"""The one retry layer: walk a request's candidates under its deadline and retry budget.

Each attempt runs inside its deployment's breaker guard; its failure is classified
(`classify.py`) and the verdict decides: next candidate now, the same one after a wait
(429 with a short Retry-After, or backoff when nothing else is left), or stop and return
the vendor's answer. Adapters, httpx, litellm and SDKs never retry on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from gateway.breakers import AttemptRecord as BreakerRecord
from gateway.breakers import BreakerRejected
from gateway.classify import Action, Policy, Verdict, backoff, classify
from gateway.errors import AttemptRecord, NoDeploymentSucceeded, UpstreamError, VendorRejected
from gateway.observe import Observer
from gateway.providers.base import UpstreamRequest
from gateway.routing import Deployment, Route, larger_context, plan
from gateway.state import DeploymentRuntime, GatewayState, Snapshot

T = TypeVar("T")


@dataclass(slots=True)
class RequestContext:
    request_id: str
    route: Route
    snapshot: Snapshot
    body: dict[str, Any]
    endpoint: str  # "chat" | "embeddings"
    deadline: float  # monotonic
    attempts: list[AttemptRecord] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # deployment ids that failed this request
    observer: Observer = field(default_factory=Observer)
    headers: Sequence[tuple[bytes, bytes]] = ()  # the caller's raw headers (trace context)
    started: float = 0.0  # state.clock() when the request arrived
    trace: Any = None  # the telemetry observer's spans for this request, when tracing

    @property
    def tried(self) -> int:
        return sum(1 for a in self.attempts if a.outcome != "skipped")

    def note(
        self,
        d: Deployment,
        outcome: str,
        reason: str,
        status: int | None,
        message: str,
        duration: float,
    ) -> None:
        record = AttemptRecord(
            d.id, d.provider, d.model, outcome, reason, status, message, round(duration * 1000, 2)
        )
        self.attempts.append(record)
        self.observer.attempt_finished(self, record)


@dataclass(slots=True)
class Success(Generic[T]):
    """A started attempt. The breaker guard stays open until `finish` (streams end later)."""

    deployment: Deployment
    value: T
    runtime: DeploymentRuntime
    guard: contextlib.ExitStack
    record: BreakerRecord
    started: float

    def finish(self, *, failed: bool = False, neutral: bool = False) -> None:
        if self.guard is None:
            return
        self.record.failed = failed
        self.record.neutral = neutral
        self.runtime.in_flight -= 1
        guard, self.guard = self.guard, None  # type: ignore[assignment]
        guard.close()


Start = Callable[[Deployment, UpstreamRequest], Awaitable[T]]


def policy_for(route: Route, snapshot: Snapshot) -> Policy:
    retry = snapshot.config.retry
    return Policy(
        retry.rate_limit_max_wait,
        retry.rate_limit_cooldown,
        route.config.content_policy == "failover",
    )


def make_request(
    state: GatewayState, ctx: RequestContext, d: Deployment, body: dict[str, Any]
) -> UpstreamRequest:
    timeouts = ctx.snapshot.config.timeouts_for(d.provider)
    remaining = max(0.001, ctx.deadline - state.clock())
    return UpstreamRequest(
        body=body,
        endpoint=ctx.endpoint,
        connect_timeout=min(timeouts.connect, remaining),
        first_token_timeout=min(timeouts.first_token, remaining),
        idle_timeout=timeouts.idle,
    )


def initial_candidates(
    state: GatewayState, ctx: RequestContext
) -> tuple[Sequence[Deployment], float]:
    """Plan the request; returns candidates and the Retry-After to use if none is left."""
    now = state.clock()
    p = plan(ctx.route, state, state.rng, now)
    for s in p.skipped:
        ctx.note(s.deployment, "skipped", s.status.availability.value, None, s.status.why, 0.0)
    return p.candidates, p.retry_after(now)


async def walk(
    state: GatewayState,
    ctx: RequestContext,
    candidates: Sequence[Deployment],
    start: Start[T],
    body_for: Callable[[Deployment], dict[str, Any]],
    *,
    retry_after: float = 1.0,
    rescue: bool = False,
) -> Success[T]:
    """Try `candidates` in order until one starts; raise when none does.

    With `rescue`, a vendor's 4xx moves on instead of being returned: the client already
    holds part of an answer, so only another deployment can help.
    """
    retry = ctx.snapshot.config.retry
    policy = policy_for(ctx.route, ctx.snapshot)
    queue = [d for d in candidates if d.id not in ctx.failed]
    same_tries: dict[str, int] = {}
    stop_reason = ""
    while queue:
        d = queue[0]
        now = state.clock()
        if ctx.tried >= retry.max_attempts:
            stop_reason = "max_attempts"
            break
        if now >= ctx.deadline:
            stop_reason = "deadline"
            break
        if ctx.tried and not state.budget.try_spend(now):
            stop_reason = "retry_budget"
            break
        rt = state.runtimes[d.id]
        if rt.drained or rt.disabled_by_operator:  # an operator acted after this request planned
            why = "drained" if rt.drained else "disabled"
            ctx.note(d, "skipped", why, None, f"{why} by an operator", 0.0)
            queue.pop(0)
            continue
        guard = contextlib.ExitStack()
        try:
            record = guard.enter_context(rt.breaker.attempt())
        except BreakerRejected as rejected:
            ctx.note(d, "skipped", rejected.status.availability.value, None, "", 0.0)
            queue.pop(0)
            continue
        rt.in_flight += 1
        try:
            value = await start(d, make_request(state, ctx, d, body_for(d)))
        except UpstreamError as error:
            rt.in_flight -= 1
            verdict = classify(error, policy, state.rng, datetime.now(UTC))
            record.failed = verdict.breaker_failure
            record.neutral = not verdict.breaker_failure
            guard.close()
            ctx.note(
                d,
                verdict.action.value,
                verdict.reason,
                error.status,
                error.message,
                state.clock() - now,
            )
            if verdict.cooldown:
                state.cool_down(d, verdict.cooldown, verdict.reason)
            queue = await _next_queue(state, ctx, queue, d, error, verdict, same_tries, rescue)
            continue
        except BaseException as exc:
            rt.in_flight -= 1
            record.neutral = True
            guard.close()
            if isinstance(exc, asyncio.CancelledError):  # the client left, or a shutdown
                ctx.note(d, "cancelled", "cancelled", None, "", state.clock() - now)
            raise
        return Success(d, value, rt, guard, record, now)
    raise _exhausted(state, ctx, stop_reason, retry_after)


async def _next_queue(
    state: GatewayState,
    ctx: RequestContext,
    queue: list[Deployment],
    d: Deployment,
    error: UpstreamError,
    verdict: Verdict,
    same_tries: dict[str, int],
    rescue: bool,
) -> list[Deployment]:
    retry = ctx.snapshot.config.retry
    action = verdict.action
    if rescue and action in (Action.RETURN, Action.LARGER_CONTEXT):
        action = Action.FAILOVER
    if action is Action.RETURN:
        raise VendorRejected(error, verdict.reason, d.id)
    if action is Action.LARGER_CONTEXT:
        larger = larger_context(queue[1:], d)
        if not larger:
            raise VendorRejected(error, verdict.reason, d.id)
        return list(larger)
    tries = same_tries.get(d.id, 0)
    rest = queue[1:]
    if action is Action.WAIT_SAME:
        wait = verdict.wait
    else:
        ctx.failed.add(d.id)
        if rest:
            return rest
        # Nothing else left: the same deployment once more, after a jittered pause.
        wait = verdict.wait or backoff(tries + 1, retry.backoff_base, retry.backoff_max, state.rng)
        if wait > max(retry.rate_limit_max_wait, retry.backoff_max):
            return rest
    if tries >= retry.same_deployment_retries or state.clock() + wait >= ctx.deadline:
        ctx.failed.add(d.id)
        return rest
    same_tries[d.id] = tries + 1
    await asyncio.sleep(wait)
    ctx.failed.discard(d.id)
    return [d, *rest]


def _exhausted(
    state: GatewayState, ctx: RequestContext, stop_reason: str, retry_after: float
) -> NoDeploymentSucceeded:
    tried = [a for a in ctx.attempts if a.outcome != "skipped"]
    status = 502 if tried and all(a.reason == "malformed_response" for a in tried) else 503
    now = state.clock()
    waits = [
        rt.cooldown_until - now
        for d in ctx.route.deployments
        if (rt := state.runtimes.get(d.id)) and rt.cooldown_until > now
    ]
    wait = min(waits) if waits else retry_after
    error = NoDeploymentSucceeded(
        ctx.route.alias, ctx.attempts, retry_after=max(1.0, wait), status=status
    )
    error.stop_reason = stop_reason  # type: ignore[attr-defined]
    return error
