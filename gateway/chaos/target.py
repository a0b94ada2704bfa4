"""The gateway under test: started in this process (its own thread and loop), or reached
by URL. Either way the runner asks it for each vendor's breaker state while it runs: from
the gateway's GET /status, or (in-process, when there is no such endpoint) its state."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

import aiohttp

from gateway.app import GatewayApp
from gateway.config import LoadedConfig
from gateway.server import bind, build_server, serve_in_thread

# Worst first: a vendor with several deployments shows the worst of their states.
SEVERITY = (
    "breaker_open",
    "half_open_busy",
    "half_open",
    "cooling_down",
    "ejected",
    "drained",
    "disabled",
    "available",
)
_START_TIMEOUT = 15.0
_STATUS_TIMEOUT = aiohttp.ClientTimeout(total=2)
_STATUS_NAMES = {"healthy": "available"}  # GET /status names -> routing.Availability values


class GatewayTarget(Protocol):
    url: str  # root URL, without /v1

    async def breaker_states(self) -> dict[str, str]: ...

    def stop(self) -> None: ...


def worst_by_vendor(states: Iterable[tuple[str, str]]) -> dict[str, str]:
    """(provider, availability) pairs -> the worst availability per provider."""
    rank = {name: i for i, name in enumerate(SEVERITY)}
    out: dict[str, str] = {}
    for provider, state in states:
        current = out.get(provider)
        if current is None or rank.get(state, 0) < rank.get(current, 0):
            out[provider] = state
    return out


async def read_status(session: aiohttp.ClientSession, url: str) -> dict[str, str] | None:
    """Each vendor's worst deployment state from the gateway's GET /status, or None when
    the gateway has no status endpoint."""
    async with session.get(url + "/status", timeout=_STATUS_TIMEOUT) as response:
        if response.status == 404:
            return None
        response.raise_for_status()
        report = await response.json()
    pairs = [
        (str(row["provider"]), _STATUS_NAMES.get(row["state"], str(row["state"])))
        for row in report.get("deployments", [])
    ]
    return worst_by_vendor(pairs)


class InProcessGateway:
    """uvicorn in a daemon thread with its own event loop, on a free loopback port."""

    def __init__(
        self, server: Any, thread: threading.Thread, port: int, session: aiohttp.ClientSession
    ) -> None:
        self._server = server
        self._thread = thread
        self._session = session
        self._has_status = True
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, loaded: LoadedConfig, session: aiohttp.ClientSession) -> InProcessGateway:
        """Blocks until the gateway serves (call it in a worker thread)."""
        sock = bind("127.0.0.1", 0)
        port = int(sock.getsockname()[1])
        server = build_server(loaded)
        thread = serve_in_thread(server, [sock], _START_TIMEOUT, name="chaos-gateway")
        return cls(server, thread, port, session)

    @property
    def app(self) -> GatewayApp:
        app: GatewayApp = self._server.config.app
        return app

    async def breaker_states(self) -> dict[str, str]:
        if self._has_status:
            states = await read_status(self._session, self.url)
            if states is not None:
                return states
            self._has_status = False
        return self._read_state()

    def _read_state(self) -> dict[str, str]:
        # Read across threads: status() only reads, and a torn read costs one sample.
        state = self.app.state()
        now = state.clock()
        pairs = [
            (d.provider, state.status(d, now).availability.value)
            for route in state.snapshot.routes.values()
            for d in route.deployments
        ]
        return worst_by_vendor(pairs)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class RemoteGateway:
    """A gateway someone else runs; breaker state comes from its GET /status."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url.rstrip("/").removesuffix("/v1")
        self._session = session

    async def breaker_states(self) -> dict[str, str]:
        return await read_status(self._session, self.url) or {}

    def stop(self) -> None:
        """Not ours to stop."""
