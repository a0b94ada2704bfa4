"""Running simulated vendors: inside an event loop (`serve_vendors`) or in a background
thread with its own loop (`VendorFleet`), each vendor on its own loopback port.

A `VendorHandle` controls one vendor from any thread: calls from other threads are
marshalled onto the vendor's loop and wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

from gateway.simulator.faults import FaultSpec
from gateway.simulator.server import VendorServer
from gateway.simulator.stats import StatsSnapshot
from gateway.simulator.vendor import VendorSpec

T = TypeVar("T")
CALL_TIMEOUT = 10.0


class VendorHandle:
    """Control of one running vendor."""

    def __init__(self, server: VendorServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop

    def __repr__(self) -> str:
        return f"VendorHandle({self.name!r}, {self.base_url!r})"

    @property
    def name(self) -> str:
        return self._server.spec.name

    @property
    def spec(self) -> VendorSpec:
        return self._server.spec

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def base_url(self) -> str:
        """Root URL, e.g. for the Anthropic SDK: `http://127.0.0.1:PORT`."""
        return f"http://{self.spec.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def set_fault(self, fault: FaultSpec) -> None:
        """Make `fault` the only active fault."""
        self.set_faults([fault])

    def add_fault(self, fault: FaultSpec) -> None:
        """Append `fault` after the active ones (first match wins)."""
        self._call(lambda: self._server.vendor.faults.add(fault))

    def set_faults(self, faults: Iterable[FaultSpec]) -> None:
        chosen = list(faults)
        self._call(lambda: self._server.vendor.set_faults(chosen))

    def clear_faults(self) -> None:
        self._call(self._server.vendor.faults.clear)

    def faults(self) -> tuple[FaultSpec, ...]:
        """The active faults, with the hits each has left in `count`."""
        return self._call(lambda: self._server.vendor.faults.active)

    def stats(self) -> StatsSnapshot:
        return self._call(self._server.vendor.stats.snapshot)

    def reset(self) -> None:
        """Clear faults and stats."""
        self._call(self._server.vendor.reset)

    @property
    def listening(self) -> bool:
        return self._server.listening

    async def go_down(self) -> None:
        """Close the vendor's port: connections are refused (and open ones aborted) until
        `come_up`. Awaitable from any event loop."""
        await self._await_on_loop(self._server.stop_listening)

    async def come_up(self) -> None:
        """Reopen the port `go_down` closed."""
        await self._await_on_loop(self._server.start_listening)

    async def _await_on_loop(self, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
        if asyncio.get_running_loop() is self._loop:
            await action()
            return
        future = asyncio.run_coroutine_threadsafe(action(), self._loop)
        await asyncio.wait_for(asyncio.wrap_future(future), CALL_TIMEOUT)

    def _call(self, action: Callable[[], T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return action()

        async def invoke() -> T:
            return action()

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(CALL_TIMEOUT)


def as_specs(specs: Iterable[VendorSpec | str]) -> list[VendorSpec]:
    """Specs from specs or bare names; names must be unique."""
    chosen = [spec if isinstance(spec, VendorSpec) else VendorSpec(name=spec) for spec in specs]
    names = [spec.name for spec in chosen]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate vendor names: {', '.join(duplicates)}")
    return chosen


@asynccontextmanager
async def serve_vendors(
    specs: Iterable[VendorSpec | str],
) -> AsyncIterator[dict[str, VendorHandle]]:
    """Run vendors on the current event loop; yields handles by name, stops them on exit."""
    loop = asyncio.get_running_loop()
    servers = [VendorServer(spec) for spec in as_specs(specs)]
    started: list[VendorServer] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
        yield {server.spec.name: VendorHandle(server, loop) for server in servers}
    finally:
        await asyncio.gather(*(server.stop() for server in started))


class VendorFleet:
    """Vendors served by one background thread. Use `VendorFleet.start(...)`."""

    def __init__(self, specs: list[VendorSpec]) -> None:
        self._specs = specs
        self._handles: dict[str, VendorHandle] = {}
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vendor-fleet", daemon=True)

    @classmethod
    def start(cls, specs: Iterable[VendorSpec | str], timeout: float = 10.0) -> VendorFleet:
        """Start the vendors and return once every one listens."""
        fleet = cls(as_specs(specs))
        fleet._thread.start()
        if not fleet._ready.wait(timeout):
            fleet.stop()
            raise TimeoutError(f"vendors did not start within {timeout}s")
        if fleet._failure is not None:
            fleet._thread.join(timeout)
            raise RuntimeError("vendors failed to start") from fleet._failure
        return fleet

    def __getitem__(self, name: str) -> VendorHandle:
        return self._handles[name]

    def __iter__(self) -> Iterator[VendorHandle]:
        return iter(self._handles.values())

    def __len__(self) -> int:
        return len(self._handles)

    @property
    def names(self) -> list[str]:
        return list(self._handles)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every vendor (hanging and stalled requests included) and the thread."""
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> VendorFleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(self._serve())
        except BaseException as exc:
            self._failure = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve_vendors(self._specs) as handles:
            self._handles = handles
            self._ready.set()
            if not self._stop_requested.is_set():
                await self._stopping.wait()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop when it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop
