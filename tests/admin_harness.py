"""Helpers for the control-plane tests: a gateway with its admin API on a second loopback
port, serving a providers.yaml file; `gateway serve` subprocesses; the Redis fixture."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.app import GatewayApp
from gateway.config import load_file
from gateway.server import bind, build_server, serve_in_thread

TOKEN = "test-admin-token-0123456789"
TOKEN_ENV = "GATEWAY_ADMIN_TOKEN"


@dataclass
class AdminGateway:
    url: str
    admin_url: str
    config_path: Path
    app: GatewayApp | None = None
    server: Any = None
    thread: threading.Thread | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    _clients: dict[str, httpx.Client] = field(default_factory=dict)
    _openai: openai.OpenAI | None = None

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def admin(self, token: str = TOKEN) -> httpx.Client:
        if token not in self._clients:
            self._clients[token] = httpx.Client(
                base_url=self.admin_url, headers={"authorization": f"Bearer {token}"}, timeout=10
            )
        return self._clients[token]

    def openai(self) -> openai.OpenAI:
        if self._openai is None:
            self._openai = openai.OpenAI(
                base_url=self.base_url, api_key="unused", max_retries=0, timeout=15
            )
        return self._openai

    def version(self) -> str:
        return str(self.admin().get("/admin/routes").json()["version"])

    def change(self, *changes: dict[str, Any], reason: str = "test") -> httpx.Response:
        body = {"version": self.version(), "reason": reason, "changes": list(changes)}
        return self.admin().post("/admin/changes", json=body)

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._openai is not None:
            self._openai.close()
            self._openai = None
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def write_config(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "providers.yaml"
    path.write_text(text)
    return path


def start_in_process(path: Path, *, watch: bool = True) -> AdminGateway:
    """The gateway in a thread of this process, the admin API on its own port."""
    loaded = load_file(path)
    api, admin = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    admin_port = admin.getsockname()[1]
    server = build_server(loaded, config_path=path, admin_port=admin_port, watch=watch)
    thread = serve_in_thread(server, [api, admin])
    return AdminGateway(
        f"http://127.0.0.1:{api.getsockname()[1]}",
        f"http://127.0.0.1:{admin_port}",
        path,
        app=server.config.app,
        server=server,
        thread=thread,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_process(path: Path, env: dict[str, str], *extra: str) -> AdminGateway:
    """`gateway serve` as a separate process; always stop() it (the fixture does)."""
    port, admin_port = free_port(), free_port()
    log = path.with_name(f"gateway-{port}.log")
    script = Path(sys.executable).parent / "gateway"
    command = [
        str(script),
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
        *extra,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    gw = AdminGateway(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{admin_port}",
        path,
        process=process,
        log=log,
    )
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(gw.url + "/healthz", timeout=1).status_code == 200:
                return gw
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            gw.stop()
            raise RuntimeError(f"gateway did not start: {log.read_text()}")
        time.sleep(0.05)


@pytest.fixture
def gateways(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[AdminGateway]]:
    """Every gateway a test starts goes in this list and is stopped after it."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    started: list[AdminGateway] = []
    yield started
    for gw in started:
        gw.stop()


def eventually(check: Callable[[], Any], timeout: float = 5.0, every: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        time.sleep(every)


def redis_url() -> str:
    """The real Redis (REDIS_URL, default 127.0.0.1:6379). Unreachable: skipped with how
    to run these tests, or failed when CI is set (CI must run them)."""
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, OSError) as exc:
        message = (
            f"Redis at {url} is unreachable ({exc}). To run the Redis tests start one "
            "(`redis-server --port 6379`) or set REDIS_URL to a reachable Redis."
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def redis_namespace() -> Iterator[tuple[str, str]]:
    """(url, key prefix unique to this test); every key under the prefix is deleted after."""
    import redis

    url = redis_url()
    prefix = f"gw-test-{uuid.uuid4().hex[:12]}"
    yield url, prefix
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
