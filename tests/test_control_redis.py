"""Replicas sharing runtime overrides through Redis: two `gateway serve` processes on the
real Redis both apply a change made through one of them within a second, a restarted
replica picks it up, and Redis stopping or unreachable never fails a request (each
replica keeps its last known overrides and says so in status)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.simulator import VendorFleet
from tests.admin_harness import (
    TOKEN,
    TOKEN_ENV,
    AdminGateway,
    eventually,
    free_port,
    gateways,
    redis_namespace,
    start_in_process,
    start_process,
    write_config,
)
from tests.conftest import FAST
from tests.load_harness import SteadyLoad

__all__ = ["gateways", "redis_namespace"]


def config_text(fleet: VendorFleet, url: str, prefix: str) -> str:
    providers = "".join(
        f'  {n}: {{kind: openai_compatible, base_url: "{fleet[n].openai_base_url}"}}\n'
        for n in ("alpha", "beta", "gamma")
    )
    return (
        FAST
        + f"state: {{redis_url: '{url}', redis_prefix: '{prefix}', sync_interval: 0.1}}\n"
        + "providers:\n"
        + providers
        + "routes:\n  chat:\n    fallbacks: [alpha/a, beta/b]\n"
        + "  other:\n    fallbacks: [gamma/g, alpha/a]\n"
    )


def view(gw: AdminGateway) -> dict[str, Any]:
    data: dict[str, Any] = gw.admin().get("/admin/routes").json()
    return data


def applied(gw: AdminGateway) -> bool:
    chat, other = view(gw)["aliases"]
    return bool(
        chat["deployments"][0]["deployment"] == "beta/b" and other["deployments"][0]["drained"]
    )


def test_two_replicas_apply_a_change_made_through_one_within_a_second(
    fleet: VendorFleet,
    tmp_path: Path,
    redis_namespace: tuple[str, str],  # before gateways: its keys go after they stopped
    gateways: list[AdminGateway],
) -> None:
    url, prefix = redis_namespace
    path = write_config(tmp_path / "conf", config_text(fleet, url, prefix))
    env = {TOKEN_ENV: TOKEN}
    a = start_process(path, env)
    gateways.append(a)
    b = start_process(path, env)
    gateways.append(b)
    read = a.version()
    assert b.version().split("-")[1] == read.split("-")[1]  # same file, same digest

    changed = a.admin().post(
        "/admin/changes",
        json={
            "version": read,
            "reason": "INC-1",
            "changes": [
                {"op": "set_order", "alias": "chat", "order": ["beta/b", "alpha/a"]},
                {"op": "drain", "deployment": "gamma/g"},
            ],
        },
    )
    returned = time.monotonic()
    assert changed.status_code == 200, changed.text
    eventually(lambda: applied(b), timeout=3, every=0.01)
    lag = time.monotonic() - returned
    assert lag < 1.0, f"replica b applied the change after {lag:.2f}s"
    assert applied(a)

    served = b.openai().chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "x"}]
    )
    assert served.headers["x-gateway-provider"] == "beta"
    assert b.version().split("-")[1] == changed.json()["version"].split("-")[1]

    stale = b.admin().post(
        "/admin/changes",
        json={"version": read, "changes": [{"op": "enable", "deployment": "gamma/g"}]},
    )
    assert stale.status_code == 409  # read before a's change: refused on every replica
    audit = b.admin().get("/admin/audit").json()["entries"]
    assert [(e["action"], e["reason"]) for e in audit] == [("change", "INC-1")]

    b.stop()
    restarted = start_process(path, env)
    gateways.append(restarted)
    assert applied(restarted)  # a restarted replica starts from what Redis holds


def test_unreachable_redis_never_fails_a_request(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    gw = start_in_process(write_config(tmp_path, config_text(fleet, dead, "x")), watch=False)
    gateways.append(gw)
    for i in range(5):
        headers = (
            gw.openai()
            .chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": f"r{i}"}]
            )
            .headers
        )
        assert headers["x-gateway-provider"] == "alpha"
    persistence = gw.admin().get("/admin/status").json()["persistence"]
    assert persistence["kind"] == "redis" and persistence["healthy"] is False
    assert "is unavailable" in persistence["error"] and dead in persistence["error"]
    assert "serving the last known overrides (revision 0)" in persistence["note"]
    refused = gw.change({"op": "drain", "deployment": "alpha/a"})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "state_store_unavailable"
    assert refused.json()["error"]["message"].startswith("Nothing was applied")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A redis-server of our own, so a test may stop and restart it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: install it to run the Redis-stop test")
    port = free_port()
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        eventually(lambda: _pings(client), timeout=5)
        client.close()

    start()
    yield f"redis://127.0.0.1:{port}/0", start
    for process in processes:
        process.kill()
        process.wait(timeout=5)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_redis_stopping_keeps_the_last_known_overrides_and_loses_no_request(
    fleet: VendorFleet,
    tmp_path: Path,
    gateways: list[AdminGateway],
    private_redis: tuple[str, Any],
) -> None:
    url, restart = private_redis
    gw = start_in_process(write_config(tmp_path, config_text(fleet, url, "p")), watch=False)
    gateways.append(gw)
    assert gw.change({"op": "drain", "deployment": "alpha/a"}).status_code == 200
    load = SteadyLoad(gw.base_url, threads=2).start()
    try:
        load.wait_for(10)
        redis.Redis.from_url(url).shutdown(nosave=True)  # Redis goes away mid-traffic

        def persistence() -> dict[str, Any]:
            return dict(gw.admin().get("/admin/status").json()["persistence"])

        eventually(lambda: not persistence()["healthy"], timeout=3)
        load.wait_for(20)
        status = gw.admin().get("/admin/status").json()
        assert status["overrides"]["deployments"]["alpha/a"]["drained"] is True
        assert "revision 1" in status["persistence"]["note"]
        restart()  # back, but empty (no persistence): this replica writes its document back
        eventually(lambda: persistence()["healthy"], timeout=3)
        client = redis.Redis.from_url(url, decode_responses=True)
        eventually(lambda: client.get("p:overrides:revision") == "1", timeout=3)
        client.close()
        load.wait_for(10)
    finally:
        outcomes = load.stop()
    assert [o for o in outcomes if not o.ok] == []
    assert {o.provider for o in outcomes} == {"beta"}  # alpha stayed drained throughout
