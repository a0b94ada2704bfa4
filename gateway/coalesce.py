"""uvicorn's httptools protocol, with a response's header block and its first body bytes
leaving in one write.

uvicorn writes the status line and headers the moment the app sends
`http.response.start`, and the body with the next message: two `send` system calls,
two TCP segments and two wake-ups of the client for every answer. Here a write that
starts a response is held; the next write (the body, in the same step of the same task
on the hot path) takes it along, and if none comes a callback sends it alone on the
loop's next turn. Holding a write until then never changes what the peer receives, only
how it is cut into segments.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

RESPONSE_START = b"HTTP/1."


class CoalescingTransport:
    """Wraps a transport: holds a response's header block until the next write."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data[: len(RESPONSE_START)] == RESPONSE_START:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = CoalescingTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, wrapped))
