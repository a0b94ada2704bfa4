"""Fault injection in front of real vendors, for staging: the gateway's own chaos layer.

Off unless `fault_injection.enabled: true`. When on, every adapter is wrapped in a
`FaultInjectingAdapter`; operators add rules through the admin API (`api/faults.py`).
A rule names one deployment (`provider/model`) and what happens to a share of its calls:

    abort   fail with HTTP `status` before the vendor is called
    delay   wait `delay_ms` first (out of the first-token budget), then call the vendor
    stall   streams: relay `after_events` events, then silence until the idle timeout;
            non-streaming: silence until the first-token timeout
    cut     streams: relay `after_events` events, then drop the stream;
            non-streaming: a truncated body

Every injected failure is an ordinary `UpstreamError` whose message says it was injected,
so the request path treats it exactly like the real thing. `fault_injection.max_requests`
caps how many requests the layer may ever affect (a rule may set a lower cap of its own);
once spent, nothing more is injected until the gateway restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.errors import (
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamStreamCut,
    UpstreamTimeout,
)
from gateway.providers.base import (
    Adapter,
    StreamEvent,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamStream,
)

FaultAction = Literal["abort", "delay", "stall", "cut"]
INJECTED_CODE = "injected_fault"


class FaultInjectionConfig(BaseModel):
    """The `fault_injection:` section of providers.yaml (staging only)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    max_requests: int = Field(default=1000, ge=1, le=10_000_000, description="lifetime cap")


class FaultRule(BaseModel):
    """One rule, as the admin API accepts it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: str = Field(pattern=r"^[^/\s]+/\S+$", description="provider/model")
    action: FaultAction
    status: int = Field(default=503, ge=400, le=599, description="abort")
    delay_ms: float = Field(default=0.0, ge=0, le=600_000, description="delay")
    after_events: int = Field(default=2, ge=0, le=100_000, description="stall, cut")
    percent: float = Field(default=100.0, gt=0, le=100)
    max_requests: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _delay_needs_a_value(self) -> FaultRule:
        if self.action == "delay" and self.delay_ms <= 0:
            raise ValueError("action 'delay' needs delay_ms > 0")
        return self

    def describe(self) -> str:
        what = {
            "abort": f"abort {self.status}",
            "delay": f"delay {self.delay_ms:g}ms",
            "stall": f"stall after {self.after_events}",
            "cut": f"cut after {self.after_events}",
        }[self.action]
        return what if self.percent >= 100 else f"{what} @{self.percent:g}%"


@dataclass(slots=True)
class ActiveRule:
    id: int
    rule: FaultRule
    affected: int = 0

    @property
    def spent(self) -> bool:
        cap = self.rule.max_requests
        return cap is not None and self.affected >= cap

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.rule.model_dump(mode="json"),
            "affected": self.affected,
            "active": not self.spent,
            "summary": self.rule.describe(),
        }


class FaultInjector:
    """The rules and the counters. Owned by the gateway's event loop (not thread-safe)."""

    def __init__(self, config: FaultInjectionConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._rules: dict[int, ActiveRule] = {}
        self._next_id = 1
        self.affected = 0
        self.injected: Counter[tuple[str, str]] = Counter()  # (deployment, action) -> count

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def remaining(self) -> int:
        return max(0, self.config.max_requests - self.affected)

    @property
    def rules(self) -> list[ActiveRule]:
        return list(self._rules.values())

    def add(self, rule: FaultRule) -> ActiveRule:
        active = ActiveRule(self._next_id, rule)
        self._rules[active.id] = active
        self._next_id += 1
        return active

    def remove(self, rule_id: int) -> bool:
        return self._rules.pop(rule_id, None) is not None

    def clear(self) -> int:
        count = len(self._rules)
        self._rules.clear()
        return count

    def for_deployment(self, deployment: str) -> list[str]:
        """Summaries of the rules that can still hit `deployment` (for status views)."""
        if not self.config.enabled or self.remaining <= 0:
            return []
        return [
            a.rule.describe()
            for a in self._rules.values()
            if a.rule.deployment == deployment and not a.spent
        ]

    def pick(self, deployment: str) -> FaultRule | None:
        """The rule that hits this call, if any; counts it against the caps."""
        if not self.config.enabled or not self._rules or self.remaining <= 0:
            return None
        for active in self._rules.values():
            if active.rule.deployment != deployment or active.spent:
                continue
            if active.rule.percent < 100 and self._rng.random() * 100 >= active.rule.percent:
                continue
            active.affected += 1
            self.affected += 1
            self.injected[(deployment, active.rule.action)] += 1
            return active.rule
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "enabled": self.config.enabled,
            "max_requests": self.config.max_requests,
            "affected": self.affected,
            "remaining": self.remaining,
            "exhausted": self.remaining == 0,
            "active_rules": sum(not a.spent for a in self._rules.values()) if self.enabled else 0,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "rules": [a.to_json() for a in self._rules.values()]}


def _injected(provider: str, what: str) -> str:
    return f"{provider}: {what} (injected by the gateway's fault injection)"


class FaultInjectingAdapter:
    """Wraps one provider's adapter; calls without a matching rule pass straight through."""

    def __init__(self, provider: str, inner: Adapter, injector: FaultInjector) -> None:
        self.provider = provider
        self.inner = inner
        self._injector = injector

    def _rule(self, request: UpstreamRequest) -> FaultRule | None:
        return self._injector.pick(f"{self.provider}/{request.body.get('model', '')}")

    async def complete(self, request: UpstreamRequest) -> UpstreamResponse:
        rule = self._rule(request)
        if rule is None:
            return await self.inner.complete(request)
        request = await self._before(rule, request)
        if rule.action == "stall":
            await asyncio.sleep(request.first_token_timeout)
            raise UpstreamTimeout(
                _injected(self.provider, "no answer (stall)"), phase="first_token"
            )
        if rule.action == "cut":
            raise UpstreamProtocolError(_injected(self.provider, "response body truncated (cut)"))
        return await self.inner.complete(request)

    async def stream(self, request: UpstreamRequest) -> UpstreamStream:
        rule = self._rule(request)
        if rule is None:
            return await self.inner.stream(request)
        request = await self._before(rule, request)
        opened = await self.inner.stream(request)
        if rule.action in ("stall", "cut"):
            return InjectedStream(self.provider, opened, rule, request)
        return opened

    async def _before(self, rule: FaultRule, request: UpstreamRequest) -> UpstreamRequest:
        """Abort and delay happen before the vendor is called; returns the request to send."""
        if rule.action == "abort":
            raise UpstreamStatusError(
                _injected(self.provider, f"HTTP {rule.status}"),
                status=rule.status,
                vendor_code=INJECTED_CODE,
            )
        if rule.action != "delay":
            return request
        delay = rule.delay_ms / 1000
        if delay >= request.first_token_timeout:
            await asyncio.sleep(request.first_token_timeout)
            raise UpstreamTimeout(
                _injected(self.provider, f"no first token within {request.first_token_timeout:g}s"),
                phase="first_token",
            )
        await asyncio.sleep(delay)
        remaining = request.first_token_timeout - delay
        return dataclasses.replace(request, first_token_timeout=remaining)

    async def aclose(self) -> None:
        await self.inner.aclose()


class InjectedStream:
    """A real stream that stalls or is cut after `after_events` events."""

    def __init__(
        self, provider: str, inner: UpstreamStream, rule: FaultRule, request: UpstreamRequest
    ) -> None:
        self.headers: Mapping[str, str] = inner.headers
        self._provider = provider
        self._inner = inner
        self._events = inner.__aiter__()
        self._rule = rule
        self._request = request
        self._passed = 0

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._passed < self._rule.after_events:
            event = await self._events.__anext__()
            self._passed += 1
            return event
        await self._inner.aclose()
        if self._rule.action == "cut":
            raise UpstreamStreamCut(_injected(self._provider, "stream dropped (cut)"))
        phase = "idle" if self._passed else "first_token"
        wait = self._request.idle_timeout if self._passed else self._request.first_token_timeout
        await asyncio.sleep(wait)
        raise UpstreamTimeout(
            _injected(self._provider, f"no stream event within {wait:g}s (stall)"), phase=phase
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def arm(adapters: dict[str, Adapter], injector: FaultInjector) -> None:
    """Wrap every adapter while fault injection is enabled, unwrap them when it is not
    (in place; called whenever the adapters or the config change)."""
    for name, adapter in adapters.items():
        inner = adapter.inner if isinstance(adapter, FaultInjectingAdapter) else adapter
        adapters[name] = FaultInjectingAdapter(name, inner, injector) if injector.enabled else inner
