"""Following a shared store: every replica polls the overrides revision and installs a
newer document within `state.sync_interval` (0.25 s by default, so well within a second).

Polling a small key, rather than pub/sub alone, needs no reconnect bookkeeping and cannot
miss a change made while this replica was cut off. When the store is unreachable the
replica keeps its last known overrides and says so in status; when Redis comes back
empty (it lost its data), the first replica to notice writes its document back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.control.audit import timestamp
from gateway.control.redis_store import RedisStore
from gateway.control.store import StoreUnavailable

if TYPE_CHECKING:
    from gateway.control.plane import ControlPlane

log = logging.getLogger("gateway.control")


@dataclass(slots=True)
class StoreHealth:
    healthy: bool = True
    error: str | None = None
    since: str | None = None  # when it went down
    last_sync: str | None = None  # last successful read
    note: str | None = None

    def up(self, wall: float) -> None:
        if not self.healthy:
            log.warning("state store reachable again")
        self.healthy, self.error, self.since = True, None, None
        self.last_sync = timestamp(wall)

    def down(self, error: str, wall: float) -> None:
        if self.healthy:
            log.warning("state store unavailable: %s", error)
            self.since = timestamp(wall)
        self.healthy, self.error = False, error


async def sync_once(plane: ControlPlane) -> None:
    """One poll: install the store's document if it moved; re-seed an emptied Redis."""
    store = plane.store
    revision = await store.revision()
    held = plane.active.overrides
    if revision == held.revision:
        return
    if revision == 0 and held.revision > 0 and isinstance(store, RedisStore):
        if await store.seed(held):
            log.warning("Redis had no overrides: wrote back revision %d", held.revision)
        return
    async with plane.lock:  # a change being saved here finishes first: never adopt a stale doc
        doc = await store.load()
        plane.adopt(doc)
    if plane.cache is not None:
        with contextlib.suppress(StoreUnavailable):
            await plane.cache.keep(doc)


async def sync_loop(plane: ControlPlane, stop: asyncio.Event) -> None:
    interval = plane.active.file.config.state.sync_interval
    wall = plane.wall
    while not stop.is_set():
        try:
            await sync_once(plane)
            plane.store_health.up(wall())
        except StoreUnavailable as exc:
            plane.store_health.down(str(exc), wall())
        except Exception as exc:  # never let the loop die: report and keep polling
            log.exception("overrides sync failed")
            plane.store_health.down(f"sync failed: {type(exc).__name__}: {exc}", wall())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
