"""Shared fixtures: simulated vendors and gateways on real loopback ports."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.app import GatewayApp
from gateway.config import load_text
from gateway.server import bind, build_server, serve_in_thread
from gateway.simulator import VendorFleet, VendorSpec

VENDORS = ("alpha", "beta", "gamma", "delta")


@pytest.fixture(scope="session")
def fleet() -> Iterator[VendorFleet]:
    specs = [VendorSpec(name=n, models=("sim-model",)) for n in VENDORS]
    with VendorFleet.start(specs) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_vendors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with healthy vendors and empty counters."""
    if "fleet" in request.fixturenames:
        running: VendorFleet = request.getfixturevalue("fleet")
        for name in VENDORS:
            running[name].reset()
    yield


@dataclass
class RunningGateway:
    url: str
    app: GatewayApp
    server: object
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        self.server.should_exit = True  # type: ignore[attr-defined]
        self.thread.join(timeout=10)


def provider_block(
    fleet: VendorFleet, names: tuple[str, ...] = VENDORS, anthropic: tuple[str, ...] = ()
) -> str:
    lines = ["providers:"]
    for name in names:
        if name in anthropic:
            lines.append(
                f'  {name}: {{kind: anthropic, base_url: "{fleet[name].base_url}", api_key: "k-{name}"}}'
            )
        else:
            lines.append(
                f'  {name}: {{kind: openai_compatible, base_url: "{fleet[name].openai_base_url}"}}'
            )
    return "\n".join(lines) + "\n"


FAST = """
timeouts: {connect: 0.5, first_token: 1.5, idle: 0.8}
retry: {backoff_base: 0.01, backoff_max: 0.05, rate_limit_max_wait: 0.5, rate_limit_cooldown: 0.3}
breaker: {consecutive_failures: 3, open_seconds: 0.5, max_open_seconds: 2, min_calls: 10}
"""


def config_for(
    fleet: VendorFleet, routes: str, extra: str = FAST, anthropic: tuple[str, ...] = ()
) -> str:
    """A gateway config over the session's vendors; `routes` is the YAML of `routes:`."""
    return extra + provider_block(fleet, anthropic=anthropic) + "routes:\n" + routes


@pytest.fixture
def start_gateway() -> Iterator[Callable[[str], RunningGateway]]:
    started: list[RunningGateway] = []

    def start(config_text: str) -> RunningGateway:
        loaded = load_text(config_text, "test")
        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        server = build_server(loaded)
        thread = serve_in_thread(server, [sock])
        app = server.config.app
        running = RunningGateway(f"http://127.0.0.1:{port}", app, server, thread)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@contextmanager
def port_that_never_accepts() -> Iterator[int]:
    """A loopback port whose accept backlog is full: the kernel drops further SYNs, so a
    connect() to it hangs, as to a vendor that does not answer at the TCP level."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()
