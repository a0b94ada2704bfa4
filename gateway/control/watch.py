"""Noticing that providers.yaml changed: a directory watch, and SIGHUP.

Kubernetes updates a mounted ConfigMap by writing a new timestamped directory and
swapping the `..data` symlink to it; `providers.yaml` is a symlink through `..data`, so
the file itself is never written. Watching the file would miss that (and an editor's
rename-over save), so the directory is watched and any event there re-reads the path,
which resolves the symlinks afresh. Only events on the file's own name or on the
ConfigMap's `..data` link count: a log file or anything else written in the same
directory must not make the serving loop re-read the config several times a second. The
reader compares contents, so a stray event costs one read. A watch that also wakes every
few seconds catches filesystems whose events get lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import watchfiles

log = logging.getLogger("gateway.control")

RECHECK_MS = 5000  # re-read even without an event this often
RETRY_SECONDS = 2.0


class ConfigEvents:
    """watchfiles filter: changes to the config file's name or to the `..data` link."""

    def __init__(self, name: str) -> None:
        self.names = (name, "..data")

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        return Path(path).name in self.names


async def watch_directory(
    path: Path,
    on_event: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    on_error: Callable[[str | None], None],
) -> None:
    """Call `on_event` after changes in `path`'s directory, until `stop` is set."""
    directory = path.parent  # not resolved: the symlink swap happens in this directory
    relevant = ConfigEvents(path.name)
    while not stop.is_set():
        try:
            async for _ in watchfiles.awatch(
                directory,
                watch_filter=relevant,
                debounce=300,
                step=50,
                stop_event=stop,
                recursive=False,
                rust_timeout=RECHECK_MS,
                yield_on_timeout=True,
            ):
                on_error(None)
                await on_event()
        except Exception as exc:  # the watch itself broke: say so, retry, never crash
            message = (
                f"watching {directory} failed ({type(exc).__name__}: {exc}); retrying every "
                f"{RETRY_SECONDS:g}s. SIGHUP and POST /admin/reload still reload the config"
            )
            log.warning(message)
            on_error(message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)


def on_sighup(callback: Callable[[], object]) -> Callable[[], None] | None:
    """Run `callback` on SIGHUP; returns the undo, or None where signals are not ours
    (a thread other than the main one, or a platform without SIGHUP)."""
    loop = asyncio.get_running_loop()
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None:
        return None
    try:
        loop.add_signal_handler(sighup, callback)
    except (ValueError, RuntimeError, NotImplementedError):
        return None

    def undo() -> None:
        loop.remove_signal_handler(sighup)

    return undo
