"""DisconnectWatch: a client that leaves cancels the handler; anything else does not."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.api.disconnect import DisconnectWatch, LateWatches


class Client:
    """An ASGI `receive` that reports a disconnect once `leave()` is called."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.calls = 0

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def leave(self) -> None:
        self.gone.set()


async def handler(client: Client, work: asyncio.Event) -> str:
    watch = DisconnectWatch(client.receive)
    try:
        await work.wait()  # e.g. relaying a stream
    except asyncio.CancelledError:
        if not watch.stop():
            raise
        await asyncio.sleep(0)  # the withdrawn cancellation does not strike again
        return "client left"
    watch.stop()
    await asyncio.sleep(0)
    return "done"


async def test_a_client_that_leaves_cancels_the_work() -> None:
    client, work = Client(), asyncio.Event()
    task = asyncio.ensure_future(handler(client, work))
    await asyncio.sleep(0.01)
    client.leave()
    assert await asyncio.wait_for(task, 1) == "client left"


async def test_work_that_ends_first_stops_the_watch() -> None:
    client, work = Client(), asyncio.Event()
    task = asyncio.ensure_future(handler(client, work))
    await asyncio.sleep(0.01)
    work.set()
    assert await asyncio.wait_for(task, 1) == "done"
    client.leave()  # too late to matter: nothing is cancelled
    await asyncio.sleep(0.01)
    assert client.calls == 1


async def test_a_cancellation_from_elsewhere_still_propagates() -> None:
    client, work = Client(), asyncio.Event()
    task = asyncio.ensure_future(handler(client, work))
    await asyncio.sleep(0.01)
    task.cancel()  # e.g. the server shutting down
    try:
        await asyncio.wait_for(task, 1)
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the server's cancellation was swallowed")
    assert task.cancelled()


async def test_a_finished_watch_is_freed_without_the_cyclic_collector() -> None:
    # A cycle per stream would be freed only by the collector, in multi-ms pauses.
    import gc
    import weakref

    client = Client()
    refs: list[weakref.ref[DisconnectWatch]] = []

    async def stream() -> None:
        watch = DisconnectWatch(client.receive)
        refs.append(weakref.ref(watch))
        await asyncio.sleep(0)
        watch.stop()
        client.leave()  # as ASGI's receive does once the response is complete

    gc.disable()
    try:
        await asyncio.ensure_future(stream())
        for _ in range(3):
            await asyncio.sleep(0)  # the watcher sees the stopped watch and ends
        assert refs[0]() is None, "the watch outlived its stream: a reference cycle"
    finally:
        gc.enable()



async def test_a_late_watch_costs_no_task_when_the_work_ends_first() -> None:
    client, late = Client(), LateWatches(0.02)
    watch = late.watch(client.receive)
    await asyncio.sleep(0)
    assert not watch.stop()
    await asyncio.sleep(0.1)  # several ticks: the forgotten watch was never armed
    assert client.calls == 0


async def test_a_late_watch_arms_after_one_to_two_ticks_and_notices_a_gone_client() -> None:
    client, late = Client(), LateWatches(0.02)
    client.leave()

    async def slow_work() -> float:
        started = asyncio.get_running_loop().time()
        watch = late.watch(client.receive)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            assert watch.stop() and watch.stop()  # still True; withdrawn only once
            await asyncio.sleep(0)  # no cancellation left over to strike
            return asyncio.get_running_loop().time() - started
        raise AssertionError("the gone client was not noticed")

    took = await asyncio.wait_for(slow_work(), 1)
    assert 0.02 <= took < 0.2
    assert client.calls == 1


async def test_late_watches_keep_ticking_only_while_some_are_pending() -> None:
    client, late = Client(), LateWatches(0.01)
    first = late.watch(client.receive)
    await asyncio.sleep(0.05)  # armed by now; nothing is pending, so the timer stopped
    second = late.watch(client.receive)  # starts the timer again
    await asyncio.sleep(0.05)
    assert client.calls == 2  # both armed: each waits in receive()
    assert not first.stop() and not second.stop()
    client.leave()  # as ASGI's receive does once the response is complete
    await asyncio.sleep(0)
