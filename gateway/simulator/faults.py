"""The fault model: what can go wrong on a simulated vendor, and which fault hits a request.

A `FaultSpec` is plain data (JSON in, JSON out). A `FaultTable` holds a vendor's active
faults in order; `decide` picks the first one that matches a request and wins its `rate`
roll, and counts down its `count` so that it expires after N hits. The table never
touches the network: `exchange.py` and `delivery.py` act the chosen fault out.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "status",
    "rate_limit",
    "latency",
    "slow_first_token",
    "hang",
    "reset",
    "malformed",
    "cut",
    "stall",
    "no_done",
    "context_length",
    "content_policy",
]
PathKind = Literal["chat", "messages", "embeddings", "models"]

# Faults that only mean something on a streaming response.
STREAM_ONLY: frozenset[str] = frozenset({"no_done"})


class FaultSpec(BaseModel):
    """One fault. Fields a kind does not use are ignored.

    kind             what happens (see the package docstring)
    status           `status`: the HTTP status to answer with (400-599)
    retry_after      `rate_limit`: seconds for `Retry-After`
    retry_after_ms   `rate_limit`: milliseconds for `retry-after-ms`
    reset_header     `rate_limit`: value of `x-ratelimit-reset-requests`, e.g. "2s"
    delay_ms         `latency`, `slow_first_token`: how long to wait
    after_chunks     `malformed`, `cut`, `stall`: good SSE events sent first (every event
                     counts: OpenAI's role chunk, Anthropic's message_start and ping)
    resume           `malformed`: keep streaming after the bad event (else end there)
    rate             chance (0..1) that a matching request is hit
    count            hit only the next N matching requests, then expire
    paths            only these endpoints (chat, messages, embeddings, models)
    stream           only streaming (True) or only non-streaming (False) requests
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    status: int = Field(default=500, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    retry_after_ms: int | None = Field(default=None, ge=0)
    reset_header: str | None = None
    delay_ms: float = Field(default=0.0, ge=0)
    after_chunks: int = Field(default=2, ge=0)
    resume: bool = False
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    count: int | None = Field(default=None, ge=1)
    paths: tuple[PathKind, ...] | None = None
    stream: bool | None = None

    @model_validator(mode="after")
    def _delay_needs_a_value(self) -> FaultSpec:
        if self.kind in ("latency", "slow_first_token") and self.delay_ms <= 0:
            raise ValueError(f"{self.kind} fault needs delay_ms > 0")
        return self

    def matches(self, path: PathKind, streaming: bool) -> bool:
        if self.paths is not None and path not in self.paths:
            return False
        if self.stream is not None and self.stream != streaming:
            return False
        return streaming or self.kind not in STREAM_ONLY


class FaultTable:
    """A vendor's active faults, first match wins. Not thread-safe: one event loop owns it."""

    def __init__(self, faults: Iterable[FaultSpec] = ()) -> None:
        self._active: list[FaultSpec] = list(faults)

    @property
    def active(self) -> tuple[FaultSpec, ...]:
        """The faults still in force; `count` shows how many hits each has left."""
        return tuple(self._active)

    def add(self, fault: FaultSpec) -> None:
        self._active.append(fault)

    def replace(self, faults: Iterable[FaultSpec]) -> None:
        self._active = list(faults)

    def clear(self) -> None:
        self._active.clear()

    def decide(self, path: PathKind, streaming: bool, rng: random.Random) -> FaultSpec | None:
        """The fault that hits this request, if any; uses up one of its `count`."""
        if not self._active:
            return None
        for index, fault in enumerate(self._active):
            if not fault.matches(path, streaming):
                continue
            if fault.rate < 1.0 and rng.random() >= fault.rate:
                continue
            self._use(index, fault)
            return fault
        return None

    def _use(self, index: int, fault: FaultSpec) -> None:
        if fault.count is None:
            return
        if fault.count <= 1:
            del self._active[index]
        else:
            self._active[index] = fault.model_copy(update={"count": fault.count - 1})
