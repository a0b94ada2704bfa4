"""ControlPlane: the one writer of the gateway's config at run time.

Three things change the running config, all through `_install` under one lock:
a reload of providers.yaml (file watch, SIGHUP, POST /admin/reload), an operator's change
(admin API), and a change another replica made (Redis sync). Each builds the effective
config (file + overrides) and validates it completely before `GatewayState.apply` swaps it
in; anything invalid leaves the running config alone. `apply` keeps breakers, health and
cooldowns of deployments that did not change, and a request in flight keeps the
Snapshot it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from gateway.config import LoadedConfig
from gateway.control.audit import Action, AuditEntry, timestamp
from gateway.control.compose import compose
from gateway.control.install import Active, install, swap
from gateway.control.overrides import ChangeRequest, Overrides, apply_changes
from gateway.control.redis_store import RedisStore
from gateway.control.reload import ReloadOutcome, read_config, restart_notes, text_hash
from gateway.control.render import changes
from gateway.control.store import FileStore, MemoryStore, OverrideStore, StoreUnavailable
from gateway.control.sync import StoreHealth, sync_loop
from gateway.control.watch import on_sighup, watch_directory
from gateway.errors import ConfigError, GatewayError
from gateway.state import GatewayState

__all__ = ["Active", "ControlPlane", "ReloadOutcome", "VersionConflict", "VersionRequired"]

log = logging.getLogger("gateway.control")


class VersionRequired(GatewayError):
    """A change did not name the config version it was based on."""


class VersionConflict(GatewayError):
    """The config changed since the caller read it."""

    def __init__(self, sent: str, current: str) -> None:
        self.current = current
        super().__init__(
            f"The config changed since you read it: you sent version '{sent}', the current "
            f"version is '{current}'. Read it again (GET /admin/routes), check that your "
            "change still makes sense, and retry with the new version."
        )


def build_store(loaded: LoadedConfig) -> tuple[OverrideStore, FileStore | None]:
    """The store the `state:` section asks for, and a local cache file beside Redis."""
    settings = loaded.config.state
    local = FileStore(Path(settings.state_file)) if settings.state_file else None
    if settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
        return RedisStore(url, settings.redis_prefix), local
    if local is not None:
        return local, None
    return MemoryStore(), None


def matches(sent: str, active: Active) -> bool:
    """`sent` is `counter-digest` (as in x-gateway-config-version) or the digest alone;
    the digest decides, so a version read from any replica in sync is accepted."""
    sent = sent.strip().removeprefix("W/").strip('"')
    return sent.rpartition("-")[2] == active.effective.digest


class ControlPlane:
    def __init__(
        self,
        loaded: LoadedConfig,
        config_path: Path | None = None,
        *,
        watch: bool = True,
        wall: Callable[[], float] = time.time,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config_path = config_path
        self.watching = watch and config_path is not None
        self.replica = f"{socket.gethostname()}:{os.getpid()}"
        self.store, self.cache = build_store(loaded)
        self.store_health = StoreHealth()
        self.last_reload: ReloadOutcome | None = None
        self.watch_error: str | None = None
        self._initial = loaded
        self.wall = wall
        self._env = env
        self._state: GatewayState | None = None
        self._active: Active | None = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[object]] = []
        self._undo_sighup: Callable[[], None] | None = None
        self._seen: str | None = None  # hash of the file text last read

    @property
    def active(self) -> Active:
        if self._active is None:
            raise RuntimeError("the control plane has not started")
        return self._active

    @property
    def state(self) -> GatewayState:
        if self._state is None:
            raise RuntimeError("the control plane has not started")
        return self._state

    # ------------------------------------------------------------------- lifecycle

    async def start(self, state: GatewayState) -> None:
        """Install the persisted overrides and start watching; never raises for a store
        or a watch that does not work (status says so instead)."""
        self._state = state
        self._active = Active(self._initial, Overrides(), self._initial, state.snapshot)
        doc = await self._initial_overrides()
        if not doc.empty or doc.revision:
            self._install(self._initial, doc)
        if self.config_path is not None:
            self._seen = text_hash(self.config_path)
            self._undo_sighup = on_sighup(lambda: self._spawn(self.reload("sighup")))
            if self.watching:
                self._spawn(
                    watch_directory(
                        self.config_path, self._on_file_event, self._stop, self._on_watch_error
                    )
                )
        if self.store.shared:
            self._spawn(sync_loop(self, self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._undo_sighup is not None:
            self._undo_sighup()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.store.aclose()

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks = [t for t in self._tasks if not t.done()] + [task]

    async def _initial_overrides(self) -> Overrides:
        try:
            doc = await self.store.load()
        except StoreUnavailable as exc:
            self.store_health.down(str(exc), self.wall())
            log.warning("%s", exc)
            return await self._cached()
        self.store_health.up(self.wall())
        if self.cache is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.cache.keep(doc)
        return doc

    async def _cached(self) -> Overrides:
        if self.cache is None:
            return Overrides()
        try:
            doc = await self.cache.load()
        except StoreUnavailable:
            return Overrides()
        self.store_health.note = f"started from the cached overrides in {self.cache.path}"
        return doc

    # ------------------------------------------------------------------- installing

    def _install(self, file: LoadedConfig, doc: Overrides) -> Active:
        self._active = install(self.state, file, doc, self._env)
        return self._active

    def adopt(self, doc: Overrides) -> None:
        """Install a document another replica saved (the caller holds the lock)."""
        if doc.revision != self.active.overrides.revision:
            self._install(self.active.file, doc)
            log.info("applied runtime overrides revision %d from the store", doc.revision)

    @property
    def lock(self) -> asyncio.Lock:
        return self._lock

    # ------------------------------------------------------------------- changes

    async def change(self, request: ChangeRequest, version: str | None, actor: str) -> Active:
        """Apply an operator's change atomically, or raise: VersionRequired,
        VersionConflict (stale), ConfigError (invalid), StoreUnavailable."""
        sent = version or request.version
        if not sent:
            raise VersionRequired(
                "Send the config version you read: an If-Match header or a 'version' field "
                "(GET /admin/routes shows it as 'version')."
            )
        async with self._lock:
            active = self.active
            if not matches(sent, active):
                raise VersionConflict(sent, active.version)
            if self.store.shared:
                fresh = await self.store.load()
                if fresh.revision != active.overrides.revision:
                    self.adopt(fresh)
                    raise VersionConflict(sent, self.active.version)
            ops = [c.model_dump(mode="json") for c in request.changes]
            try:
                doc = apply_changes(active.overrides, request.changes, active.file.config)
                effective = compose(active.file, doc, self._env)
            except ConfigError as exc:
                await self._audit("change_rejected", actor, request.reason, ops, exc.problems)
                raise
            entry = self._entry("change", actor, request.reason, ops)
            entry = entry.model_copy(
                update={
                    "before": active.overrides.model_dump(mode="json"),
                    "after": doc.model_dump(mode="json"),
                    "version_after": f"{self.state.version + 1}-{effective.digest}",
                }
            )
            if not await self.store.save(active.overrides.revision, doc, entry):
                raise VersionConflict(sent, active.version)
            installed = self._active = swap(self.state, active.file, doc, effective, [])
        if self.cache is not None:
            with contextlib.suppress(StoreUnavailable):
                await self.cache.keep(doc)
        return installed

    # ------------------------------------------------------------------- reloads

    async def _on_file_event(self) -> None:
        if self.config_path is not None and text_hash(self.config_path) != self._seen:
            await self.reload("file")

    def _on_watch_error(self, message: str | None) -> None:
        self.watch_error = message

    async def reload(self, trigger: str, actor: str | None = None) -> ReloadOutcome:
        """Re-read providers.yaml; install it if it is valid, else keep serving the old.
        `trigger` is file, sighup or admin; `actor` who asked (default: the trigger)."""
        async with self._lock:
            outcome = await self._reload(trigger, actor or trigger)
        self.last_reload = outcome
        return outcome

    async def _reload(self, trigger: str, actor: str) -> ReloadOutcome:
        active = self.active
        if self.config_path is None:
            problems = ["this gateway was started without a config file"]
            return await self._reject(trigger, actor, problems)
        path = self.config_path
        read = await asyncio.to_thread(read_config, path, self._env)
        self._seen = read.text_hash
        file = read.loaded
        if file is None:
            return await self._reject(trigger, actor, read.problems)
        if file.digest == active.file.digest:
            return self._outcome(trigger, "unchanged")
        installed = self._install(file, active.overrides)
        notes = changes(active.effective, installed.effective) + list(installed.notes)
        notes += restart_notes(self._initial, file)
        entry = self._entry("reload", actor, "", [])
        entry = entry.model_copy(
            update={
                "before": {"file_digest": active.file.digest},
                "after": {"file_digest": file.digest},
                "version_before": active.version,
                "version_after": installed.version,
                "notes": notes,
            }
        )
        await self._record(entry)
        log.warning("reloaded %s (%s): version %s", path, trigger, installed.version)
        return self._outcome(trigger, "accepted", notes=notes)

    async def _reject(self, trigger: str, actor: str, problems: list[str]) -> ReloadOutcome:
        source = str(self.config_path or "config")
        message = f"{source}: " + "; ".join(problems)
        self.state.reload_errors += 1
        self.state.last_reload_error = message
        log.warning("config reload rejected, still serving %s: %s", self.active.version, message)
        await self._audit("reload_rejected", actor, "", [], problems)
        return self._outcome(trigger, "rejected", problems=problems)

    def _outcome(
        self,
        trigger: str,
        outcome: str,
        problems: list[str] | None = None,
        notes: list[str] | None = None,
    ) -> ReloadOutcome:
        return ReloadOutcome(
            timestamp(self.wall()),
            trigger,
            outcome,
            self.active.version,
            problems or [],
            notes or [],
        )

    # ------------------------------------------------------------------- audit

    def _entry(
        self, action: Action, actor: str, reason: str, ops: list[dict[str, object]]
    ) -> AuditEntry:
        return AuditEntry(
            at=timestamp(self.wall()),
            actor=actor,
            replica=self.replica,
            action=action,
            reason=reason,
            changes=ops,
            version_before=self.active.version,
        )

    async def _audit(
        self,
        action: Action,
        actor: str,
        reason: str,
        ops: list[dict[str, object]],
        problems: list[str],
    ) -> None:
        entry = self._entry(action, actor, reason, ops)
        await self._record(entry.model_copy(update={"problems": problems}))

    async def _record(self, entry: AuditEntry) -> None:
        try:
            await self.store.record(entry)
        except StoreUnavailable as exc:
            log.warning("audit entry not stored (%s): %s", exc, entry.model_dump_json())

    async def audit(self, limit: int) -> list[AuditEntry]:
        return await self.store.audit(limit)
