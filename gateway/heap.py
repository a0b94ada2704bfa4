"""Garbage-collector settings for the serving process.

After start-up the interpreter holds some 80,000 long-lived objects (modules, pydantic
models, the config). CPython's collector walks every one of them in each full
collection: 50-80 ms on one core, during which no request moves, which is most of the
gateway's p99. Young collections also run every 700 net allocations, which a request
path of short-lived dicts, frames and futures hits every few requests; reference
counting frees nearly all of them anyway.

`settle` is called once, by the serving command just before it starts serving: it moves
everything alive to the permanent generation (`gc.freeze`), so collections only walk what
requests create, and raises the young-generation threshold. Cyclic garbage is still
collected, just in larger, rarer batches. Not called from library code or tests: it is a
process-wide policy that belongs to the process that serves.

`frozen` is the same freeze for a while only, undone when its block ends: a chaos run
serves simulated vendors, a gateway and the load that drives them from one interpreter,
so a full collection there stops all three at once and lands in the latency it measures.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000


def settle(young_threshold: int = YOUNG_THRESHOLD) -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


@contextmanager
def frozen() -> Iterator[None]:
    """Leave every object alive now out of collections until the block ends; a process
    whose heap is already frozen (`settle`) is left as it is."""
    if gc.get_freeze_count() > 0:
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
