"""What telemetry adds to one request, in-process, without the noise of a load test.

    .venv/bin/python bench/telemetry_hooks.py [--requests 200000]

A gateway runs in this process in front of simulated vendors; one chat request and one
stream go through it while a recording observer notes every hook call the request path
makes (request started, each attempt, request finished) with its real arguments. Then
the telemetry observer (TelemetryBatch: metrics alone, and metrics with the request log)
replays those calls `--requests` times, batches drained as in serving and the log's
lines written to /dev/null, and the script prints microseconds per request. This is the
work done hot, in a tight loop; telemetry_overhead.py measures it in a serving gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from gateway.app import GatewayApp
from gateway.config import load_text
from gateway.observe import Observer, Observers
from gateway.server import bind, build_server, serve_in_thread
from gateway.simulator import VendorFleet, VendorSpec
from gateway.telemetry.batch import TelemetryBatch
from gateway.telemetry.request_log import RequestLog

Call = tuple[str, tuple[Any, ...]]


class Recorder(Observer):
    """Keeps every hook call with its arguments."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def request_started(self, *args: Any) -> None:
        self.calls.append(("request_started", args))

    def attempt_finished(self, *args: Any) -> None:
        self.calls.append(("attempt_finished", args))

    def request_finished(self, *args: Any) -> None:
        self.calls.append(("request_finished", args))


class DevNull:
    batched = True

    def __init__(self) -> None:
        self._file = open(os.devnull, "wb")  # noqa: SIM115  closed in close()

    def write(self, lines: bytes | bytearray) -> None:
        self._file.write(lines)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def record_calls(stream: bool) -> tuple[list[Call], dict[str, Observer]]:
    """The hook calls of one request through a real gateway, and telemetry observers
    built on that gateway's metrics: by name, metrics alone and metrics with the log."""
    with VendorFleet.start([VendorSpec(name=n, models=("m",)) for n in ("a", "b")]) as fleet:
        config = (
            "health: {probe: {kind: none}}\nproviders:\n"
            f'  a: {{kind: openai_compatible, base_url: "{fleet["a"].openai_base_url}"}}\n'
            f'  b: {{kind: openai_compatible, base_url: "{fleet["b"].openai_base_url}"}}\n'
            "routes:\n  chat: {fallbacks: [a/m, b/m]}\n"
        )
        sock = bind("127.0.0.1", 0)
        server = build_server(load_text(config, "bench"))
        thread = serve_in_thread(server, [sock])
        app: GatewayApp = server.config.app  # type: ignore[assignment]
        recorder = Recorder()
        app.state().observer.add(recorder, first=True)
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body["stream"] = True
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/chat/completions"
        request = urllib.request.Request(
            url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        time.sleep(0.1)  # a stream reports its end after the last write
        metrics, pricing, clock = app.telemetry.metrics, app.telemetry.pricing, app.state().clock
        assert metrics is not None
        logs = app.state().snapshot.config.telemetry.logs
        telemetry: dict[str, Observer] = {
            "metrics": TelemetryBatch(metrics, None, pricing, clock, lambda: logs),
            "metrics + log": TelemetryBatch(
                metrics, RequestLog(DevNull()), pricing, clock, lambda: logs
            ),
        }
        server.should_exit = True
        thread.join(timeout=10)
    return recorder.calls, telemetry


def replay(calls: list[Call], observer: Observer, requests: int) -> float:
    """Seconds per request of `observer` handling `calls` (the hooks it overrides, as
    Observers calls them), inside a running event loop (the batch timer needs one) with
    the collector off, as serving has it between its rare collections."""
    bound: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (getattr(observer, name), args)
        for name, args in calls
        if getattr(type(observer), name) is not getattr(Observer, name)
    ]

    async def run() -> float:
        gc.disable()
        try:
            started = time.perf_counter()
            for _ in range(requests):
                for method, args in bound:
                    method(*args)
            if isinstance(observer, TelemetryBatch):
                observer.drain()
            return (time.perf_counter() - started) / requests
        finally:
            gc.enable()

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/telemetry_hooks.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5, help="the best round is shown")
    args = parser.parse_args(argv)
    print("| request | observer | us per request (best of rounds) |")
    print("|---|---|---|")
    for stream in (False, True):
        calls, telemetry = record_calls(stream)
        hooks = ", ".join(name for name, _ in calls)
        kind = "stream" if stream else "chat"
        for name, observer in telemetry.items():
            best = min(replay(calls, observer, args.requests) for _ in range(args.rounds))
            print(f"| {kind} | {name} | {best * 1e6:.2f} |")
        fanout = Observers(telemetry["metrics + log"])
        best = min(replay(calls, fanout, args.requests) for _ in range(args.rounds))
        print(f"| {'stream' if stream else 'chat'} | all, through Observers | {best * 1e6:.2f} |")
        print(f"hooks of one request: {hooks}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
