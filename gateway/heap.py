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
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle(young_threshold: int = YOUNG_THRESHOLD) -> None:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
