"""Cancel a streaming handler the moment its client disconnects.

A stream's handler spends its time awaiting the vendor, where it would not notice that
the client left; the upstream request must then stop at once (and stop costing tokens).
`DisconnectWatch` runs one task that waits for ASGI's `http.disconnect` and cancels the
handler's own task: the handler keeps relaying inline, with no second task and no
`asyncio.wait` per stream.

The watcher is never cancelled: once the response is complete, ASGI's `receive` answers
`http.disconnect` by itself, and a stopped watch then just ends. A cancelled watcher
would leave a CancelledError whose traceback holds the frames that hold the watch, a
reference cycle of some 20 objects per stream that only the cyclic collector frees, in
pauses of several milliseconds.
"""

from __future__ import annotations

import asyncio

from gateway.api.responses import Receive


class DisconnectWatch:
    """Start it inside the handler's task; `stop()` before the response's last message.

    Around the watched code: `except asyncio.CancelledError: if not watch.stop(): raise`.
    """

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None, "DisconnectWatch runs inside the handler's task"
        self._handler = task
        self.left = False
        self._stopped = False
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._stopped:
            self.left = True
            self._handler.cancel()

    def stop(self) -> bool:
        """Stop watching. True when the client left: the cancellation this watch caused is
        withdrawn, so the handler can finish its bookkeeping."""
        self._stopped = True
        if self.left:
            self._handler.uncancel()
        return self.left
