"""One simulated vendor: its configuration and its run-time state."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from gateway.simulator.faults import FaultSpec, FaultTable
from gateway.simulator.stats import StatsRecorder


class VendorSpec(BaseModel):
    """How one simulated vendor behaves.

    port 0 picks a free port. `api_key` None accepts any request; otherwise OpenAI paths
    want `Authorization: Bearer <key>` and /v1/messages wants `x-api-key: <key>`.
    `answer_salt` changes every answer (a different model). `context_window` rejects
    prompts whose token estimate exceeds it. `chunks` is the number of content chunks a
    streamed answer is split into; `chunk_delay_ms` the pause between stream events.
    `seed` seeds the random generator that rolls fault rates.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    port: int = Field(default=0, ge=0, le=65535)
    host: str = "127.0.0.1"
    models: tuple[str, ...] = ("sim-large", "sim-small")
    api_key: str | None = None
    answer_salt: str = ""
    reject_prefill: bool = False
    context_window: int | None = Field(default=None, ge=1)
    chunks: int = Field(default=8, ge=1)
    chunk_delay_ms: float = Field(default=0.0, ge=0)
    faults: tuple[FaultSpec, ...] = ()
    seed: int = 0


class Vendor:
    """A vendor's mutable state. Owned by the event loop that serves it."""

    def __init__(self, spec: VendorSpec) -> None:
        self.spec = spec
        self.faults = FaultTable(spec.faults)
        self.stats = StatsRecorder()
        self.rng = random.Random(spec.seed)
        # Set when the server stops: releases every hanging or stalled handler.
        self.closing = asyncio.Event()

    def set_faults(self, faults: Iterable[FaultSpec]) -> None:
        self.faults.replace(faults)

    def reset(self) -> None:
        """Clear faults and stats and reseed the fault dice."""
        self.faults.clear()
        self.stats.reset()
        self.rng.seed(self.spec.seed)
