"""Putting bytes on the wire, faults included: SSE streams, partial bodies, drops and holds."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway.simulator.faults import FaultSpec
from gateway.simulator.vendor import Vendor

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
JSON_TYPE = "application/json"
# Bounds the wait for queued bytes to leave before a deliberate disconnect.
_FLUSH_STEPS = 100


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A whole streamed answer as SSE events, ready to send.

    `terminal` ends a complete stream (`data: [DONE]`, `event: message_stop`);
    `malformed` is the dialect's broken event for the `malformed` fault.
    """

    events: tuple[bytes, ...]
    terminal: bytes
    malformed: bytes


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON_TYPE)


def drop(request: web.BaseRequest, reset: bool = False) -> None:
    """Close the connection without a (complete) response; `reset` sends a TCP RST."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        # Linger 0 turns close() into a reset instead of an orderly FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def pause(vendor: Vendor, seconds: float) -> bool:
    """Sleep `seconds`, cut short if the server stops; True if it is stopping."""
    if vendor.closing.is_set():
        return True
    try:
        await asyncio.wait_for(vendor.closing.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def hold(request: web.BaseRequest, vendor: Vendor) -> None:
    """Keep the connection open and silent until the server stops (or the client leaves,
    which cancels the handler)."""
    await vendor.closing.wait()
    drop(request)


async def stream(
    request: web.BaseRequest, vendor: Vendor, plan: StreamPlan, fault: FaultSpec | None
) -> web.StreamResponse:
    delay = vendor.spec.chunk_delay_ms / 1000
    if fault is None and delay <= 0:
        # The healthy fast path: headers and every event in one chunked write.
        whole = web.Response(body=b"".join((*plan.events, plan.terminal)), headers=SSE_HEADERS)
        whole.enable_chunked_encoding()
        return whole
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    vendor.stats.status(200)
    pacer = _Pacer(request, response, vendor, delay)
    with contextlib.suppress(ConnectionError):  # the client left: nothing more to send
        await _play(request, vendor, pacer, plan, fault)
    return response


async def partial(
    request: web.BaseRequest, vendor: Vendor, body: bytes, stall: bool
) -> web.StreamResponse:
    """Announce the full `Content-Length`, send half the body, then hang up (or `stall`)."""
    response = web.StreamResponse(headers={"Content-Type": JSON_TYPE})
    response.content_length = len(body)
    await response.prepare(request)
    vendor.stats.status(200)
    with contextlib.suppress(ConnectionError):
        await response.write(body[: max(1, len(body) // 2)])
        if stall:
            await hold(request, vendor)
        else:
            await _drop_after_flush(request)
    return response


async def _play(
    request: web.BaseRequest,
    vendor: Vendor,
    pacer: _Pacer,
    plan: StreamPlan,
    fault: FaultSpec | None,
) -> None:
    kind = fault.kind if fault is not None else None
    if fault is not None and kind == "slow_first_token":
        await pacer.wait(fault.delay_ms / 1000)
    if fault is None or kind not in ("cut", "stall", "malformed"):
        await pacer.send(plan.events)
        if kind != "no_done":
            await pacer.send((plan.terminal,))
        return
    head, tail = plan.events[: fault.after_chunks], plan.events[fault.after_chunks :]
    await pacer.send(head)
    if kind == "cut":
        await _drop_after_flush(request)
    elif kind == "stall":
        await hold(request, vendor)
    else:
        await pacer.send((plan.malformed,))
        if fault.resume:
            await pacer.send((*tail, plan.terminal))


async def _drop_after_flush(request: web.BaseRequest) -> None:
    transport = request.transport
    for _ in range(_FLUSH_STEPS):
        if transport is None or transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.001)
    drop(request)


class _Pacer:
    """Writes events `delay` seconds apart (all in one write when there is no delay);
    a server that stops meanwhile drops the connection."""

    def __init__(
        self, request: web.BaseRequest, response: web.StreamResponse, vendor: Vendor, delay: float
    ) -> None:
        self._request = request
        self._response = response
        self._vendor = vendor
        self._delay = delay
        self._sent = 0

    async def send(self, events: Sequence[bytes]) -> None:
        if not events:
            return
        if self._delay <= 0:
            await self._response.write(b"".join(events))
            self._sent += len(events)
            return
        for event in events:
            if self._sent:
                await self.wait(self._delay)
            await self._response.write(event)
            self._sent += 1

    async def wait(self, seconds: float) -> None:
        if await pause(self._vendor, seconds):
            drop(self._request)
            raise ConnectionResetError("the simulated vendor is stopping")
