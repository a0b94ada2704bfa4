"""Cancel a handler the moment its client disconnects.

A handler spends its time awaiting the vendor, where it would not notice that the client
left; the upstream request must then stop at once (and stop costing tokens).
`DisconnectWatch` runs one task that waits for ASGI's `http.disconnect` and cancels the
handler's own task: the handler keeps working inline, with no second task and no
`asyncio.wait` per request.

Most answers are done within a few milliseconds, and a task (or even a timer: 2 µs in
uvloop) for each would cost more than the rare client that leaves early. `LateWatches`
arms a request's watch only once it has run `after` seconds, from one timer for all.

The watcher is never cancelled: once the response is complete, ASGI's `receive` answers
`http.disconnect` by itself, and a stopped watch then just ends. A cancelled watcher
would leave a CancelledError whose traceback holds the frames that hold the watch, a
reference cycle of some 20 objects per request that only the cyclic collector frees, in
pauses of several milliseconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.api.responses import Receive


class DisconnectWatch:
    """Start it inside the handler's task; `stop()` before the response's last message.

    Around the watched code: `except asyncio.CancelledError: if not watch.stop(): raise`.
    """

    def __init__(
        self, receive: Receive, *, armed: bool = True, handler: asyncio.Task[Any] | None = None
    ) -> None:
        task = handler or asyncio.current_task()
        assert task is not None, "DisconnectWatch runs inside the handler's task"
        self._handler = task
        self._receive: Receive | None = receive
        self.left = False
        self._stopped = False
        self._pending: LateWatches | None = None
        if armed:
            self.arm()

    def arm(self) -> None:
        """Start watching (once)."""
        receive, self._receive = self._receive, None
        if receive is not None and not self._stopped:
            self._handler.get_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._stopped:
            self.left = True
            self._handler.cancel()

    def stop(self) -> bool:
        """Stop watching. True when the client left: the cancellation this watch caused is
        withdrawn (once, however often `stop` is called), so the handler can finish its
        bookkeeping."""
        if self._stopped:
            return self.left
        self._stopped = True
        self._receive = None
        if self._pending is not None:
            self._pending.forget(self)
            self._pending = None
        if self.left:
            self._handler.uncancel()
        return self.left


class LateWatches:
    """Hands out watches that arm once their request has run `after` to `2 * after`
    seconds: one timer ticks every `after` while any is pending, arming the ones that
    were already pending at the tick before."""

    def __init__(self, after: float) -> None:
        self.after = after
        self._young: set[DisconnectWatch] = set()
        self._old: set[DisconnectWatch] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticking = False

    def watch(self, receive: Receive) -> DisconnectWatch:
        handler = asyncio.current_task()
        assert handler is not None, "LateWatches.watch runs inside the handler's task"
        loop = handler.get_loop()
        if loop is not self._loop:  # served on a new loop: the old timer and requests are gone
            self._loop, self._ticking = loop, False
            self._young.clear()
            self._old.clear()
        watch = DisconnectWatch(receive, armed=False, handler=handler)
        watch._pending = self
        self._young.add(watch)
        if not self._ticking:
            self._ticking = True
            loop.call_later(self.after, self._tick, loop)
        return watch

    def forget(self, watch: DisconnectWatch) -> None:
        self._young.discard(watch)
        self._old.discard(watch)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return  # a timer of a loop this object no longer serves
        due, self._old, self._young = self._old, self._young, set()
        for watch in due:
            watch._pending = None
            watch.arm()
        if self._old:
            loop.call_later(self.after, self._tick, loop)
        else:
            self._ticking = False
