"""Relay write batching: events that arrive together leave in one write, and nothing the
adapter has handed over waits for a later event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from gateway.breakers import AttemptRecord
from gateway.failover import Success
from gateway.providers.base import StreamEvent
from gateway.routing import Deployment
from gateway.streaming import DONE, Opened, Relay

DEPLOYMENT = Deployment("alpha/m", "alpha", "m", 0, 1.0, None)


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"role": "assistant", "content": ""} if content is None and not finish else {}
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]}


def event(data: dict[str, Any] | None, more: bool) -> StreamEvent:
    raw = DONE if data is None else b"data: " + orjson.dumps(data) + b"\n\n"
    return StreamEvent(raw, data, more)


class FakeStream:
    """Yields `events`; waits on `gate` before the event at index `wait_before`."""

    def __init__(self, events: list[StreamEvent], wait_before: int = -1) -> None:
        self.events = events
        self.wait_before = wait_before
        self.gate = asyncio.Event()
        self.headers: dict[str, str] = {}
        self.closed = False

    async def iterate(self) -> AsyncIterator[StreamEvent]:
        for i, e in enumerate(self.events):
            if i == self.wait_before:
                await self.gate.wait()
            yield e

    async def aclose(self) -> None:
        self.closed = True


def relay_for(
    held: list[dict[str, Any]], stream: FakeStream, held_more: bool
) -> tuple[Relay, Success[Opened], list[bytes]]:
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    opened = Opened(
        stream,  # type: ignore[arg-type]
        stream.iterate(),
        [(c, event(c, False).raw) for c in held],
        more=held_more,
    )
    runtime = SimpleNamespace(in_flight=1)
    success = Success(DEPLOYMENT, opened, runtime, contextlib.ExitStack(), AttemptRecord(), 0.0)  # type: ignore[arg-type]
    ctx = SimpleNamespace(body={}, failed=set())
    return Relay(SimpleNamespace(), ctx, send), success, sent  # type: ignore[arg-type]


HELD = [chunk(), chunk("Hello")]
REST = [chunk(" there"), chunk(" friend"), chunk(finish="stop")]


def _bytes(chunks: list[dict[str, Any]]) -> list[bytes]:
    return [event(c, False).raw for c in chunks]


@pytest.mark.parametrize(
    ("held_more", "more", "writes"),
    [
        # one network read: the whole answer and [DONE] leave with the body's end
        (True, [True, True, True], [[*_bytes(HELD), *_bytes(REST), DONE]]),
        # every event in its own read: one write each
        (
            False,
            [False, False, False],
            [_bytes(HELD), *([b] for b in _bytes(REST)), [DONE]],
        ),
        # two reads after the first token
        (False, [True, False, True], [_bytes(HELD), _bytes(REST[:2]), [_bytes(REST)[2], DONE]]),
    ],
)
async def test_events_of_one_read_leave_in_one_write(
    held_more: bool, more: list[bool], writes: list[list[bytes]]
) -> None:
    stream = FakeStream(
        [*(event(c, m) for c, m in zip(REST, more, strict=True)), event(None, False)]
    )
    relay, success, sent = relay_for(HELD, stream, held_more)
    assert await relay.run(success) is True
    assert [*sent, relay.tail()] == [b"".join(w) for w in writes]  # the tail ends the body
    assert relay.delivered.content == "Hello there friend"
    assert relay.delivered.finish_reason == "stop"
    assert success.guard is None  # the breaker guard was released
    assert stream.closed  # the upstream connection was handed back at once


async def test_nothing_handed_over_waits_for_the_next_event() -> None:
    # The vendor sends the first token, then pauses: the client must have it meanwhile.
    stream = FakeStream([event(REST[0], False), event(REST[2], True), event(None, False)], 1)
    relay, success, sent = relay_for(HELD, stream, False)
    running = asyncio.ensure_future(relay.run(success))
    for _ in range(20):
        await asyncio.sleep(0)
    assert sent == [b"".join(_bytes(HELD)), _bytes(REST)[0]]
    stream.gate.set()
    assert await asyncio.wait_for(running, 2) is True
    assert relay.tail() == _bytes(REST)[2] + DONE
