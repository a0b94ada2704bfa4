"""CoalescingTransport: a response's header block leaves with the next write (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.coalesce import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


def wrap() -> tuple[CoalescingTransport, Recorder]:
    recorder = Recorder()
    return CoalescingTransport(recorder, asyncio.get_running_loop()), recorder  # type: ignore[arg-type]


async def test_headers_and_body_written_in_one_step_leave_in_one_write() -> None:
    transport, recorder = wrap()
    transport.write(HEAD)
    assert recorder.writes == []
    transport.write(b"{}")
    assert recorder.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert recorder.writes == [HEAD + b"{}"]


async def test_headers_alone_leave_on_the_loops_next_turn() -> None:
    transport, recorder = wrap()
    transport.write(HEAD)
    assert transport.get_write_buffer_size() == len(HEAD)
    await asyncio.sleep(0)
    assert recorder.writes == [HEAD]
    transport.write(b"5\r\nhello\r\n")  # a later chunk goes straight out
    assert recorder.writes == [HEAD, b"5\r\nhello\r\n"]


async def test_other_writes_are_not_held() -> None:
    transport, recorder = wrap()
    transport.write(b"0\r\n\r\n")
    assert recorder.writes == [b"0\r\n\r\n"]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    transport, recorder = wrap()
    transport.write(HEAD)
    transport.close()
    assert recorder.writes == [HEAD] and recorder.closed
    transport, recorder = wrap()
    transport.write(HEAD)
    transport.abort()
    await asyncio.sleep(0)
    assert recorder.writes == [] and recorder.aborted


async def test_everything_else_is_the_wrapped_transport() -> None:
    transport, _ = wrap()
    assert transport.get_extra_info("peername") == "info:peername"
