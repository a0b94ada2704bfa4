"""Incremental Server-Sent Events parser: bytes in as they arrive, `data` payloads out.

Follows the WHATWG event-stream rules the OpenAI wire format relies on: lines end in LF,
CRLF or a lone CR; a blank line ends an event; `:` lines are comments; several `data:`
lines in one event join with LF; other fields (`event:`, `id:`, `retry:`) are ignored.
Events whose data is empty are not dispatched.
"""

from __future__ import annotations

_LF = b"\n"
_CR = b"\r"
_EVENT_END = b"\n\n"


class SSEParser:
    """Feed raw chunks with `feed`; call `finish` once at end of stream."""

    __slots__ = ("_buffer", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""  # normalised text after the last complete event
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the payloads of every event completed by `chunk`, in order."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == _LF:
                chunk = chunk[1:]
        if _CR in chunk:
            self._skip_lf = chunk[-1:] == _CR
            chunk = chunk.replace(b"\r\n", _LF).replace(_CR, _LF)
        buffer = self._buffer + chunk if self._buffer else chunk
        end = buffer.rfind(_EVENT_END)
        if end < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 2 :]
        payloads: list[bytes] = []
        for block in buffer[:end].split(_EVENT_END):
            if block.startswith(b"data:") and _LF not in block:
                # the common case: one `data:` line per event
                payload = block[6:] if block[5:6] == b" " else block[5:]
                if payload:
                    payloads.append(payload)
            elif block:
                payload = _block_payload(block)
                if payload:
                    payloads.append(payload)
        return payloads

    def finish(self) -> list[bytes]:
        """End of stream: an event missing only its blank line still counts.

        A trailing line without its line ending may be a truncated write, so it is dropped.
        """
        buffer, self._buffer = self._buffer, b""
        end = buffer.rfind(_LF)
        if end < 0:
            return []
        payload = _block_payload(buffer[:end])
        return [payload] if payload else []


def _block_payload(block: bytes) -> bytes:
    data: list[bytes] = []
    for line in block.split(_LF):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line == b"data":
            data.append(b"")
    return _LF.join(data)


def encode_event(payload: bytes) -> bytes:
    """The canonical `data: ...\\n\\n` bytes of one event (multi-line data stays valid SSE)."""
    if _LF in payload:
        payload = payload.replace(_LF, b"\ndata: ")
    return b"data: " + payload + b"\n\n"
