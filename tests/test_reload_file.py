"""Reloading providers.yaml while serving: the directory watch (a Kubernetes ConfigMap
symlink swap included), SIGHUP and POST /admin/reload; invalid files rejected with the
file, line and key path while the old config keeps serving; requests in flight finish on
their config; breakers of unchanged deployments survive."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.simulator import FaultSpec, VendorFleet, expected_answer
from tests.admin_harness import (
    AdminGateway,
    eventually,
    gateways,
    start_in_process,
    start_process,
    write_config,
)
from tests.conftest import FAST

__all__ = ["gateways"]


def config_text(fleet: VendorFleet, order: str = "alpha/sim-a, beta/sim-b", extra: str = "") -> str:
    providers = "".join(
        f'  {n}: {{kind: openai_compatible, base_url: "{fleet[n].openai_base_url}"}}\n'
        for n in ("alpha", "beta", "gamma")
    )
    return (
        FAST
        + extra
        + "providers:\n"
        + providers
        + f"routes:\n  chat:\n    fallbacks: [{order}]\n"
        + "  other:\n    fallbacks: [gamma/sim-g]\n"
    )


def replace_file(path: Path, text: str) -> None:
    """How editors and config tools write: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def ask(gw: AdminGateway, prompt: str = "hi") -> Any:
    raw = gw.openai().chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": prompt}]
    )
    assert raw.parse().choices[0].message.content == expected_answer(prompt)
    return raw.headers


def first_deployment(gw: AdminGateway) -> str:
    return str(gw.admin().get("/admin/routes").json()["aliases"][0]["deployments"][0]["deployment"])


def test_a_changed_file_is_served_within_seconds(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    path = write_config(tmp_path / "conf", config_text(fleet))
    gw = start_in_process(path)
    gateways.append(gw)
    old = ask(gw)["x-gateway-config-version"]
    started = time.monotonic()
    replace_file(path, config_text(fleet, "beta/sim-b, alpha/sim-a"))
    eventually(lambda: first_deployment(gw) == "beta/sim-b", timeout=5)
    elapsed = time.monotonic() - started
    headers = ask(gw, "reloaded")
    assert headers["x-gateway-provider"] == "beta"
    assert headers["x-gateway-config-version"] != old
    status = gw.admin().get("/admin/status").json()
    assert status["reload"]["last"]["outcome"] == "accepted"
    assert status["reload"]["last"]["trigger"] == "file"
    assert (
        "routes.chat.order: 'alpha/sim-a, beta/sim-b' -> 'beta/sim-b, alpha/sim-a'"
        in (status["reload"]["last"]["notes"])
    )
    assert elapsed < 3.0, f"reload took {elapsed:.2f}s"


def test_a_configmap_symlink_swap_is_noticed(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    # The kubelet's layout: providers.yaml -> ..data/providers.yaml, ..data -> ..<stamp>/
    mount = tmp_path / "etc-gateway"
    write_config(mount / "..2025_01_01_00_00_00.1", config_text(fleet))
    (mount / "..data").symlink_to("..2025_01_01_00_00_00.1")
    (mount / "providers.yaml").symlink_to("..data/providers.yaml")
    gw = start_in_process(mount / "providers.yaml")
    gateways.append(gw)
    assert ask(gw)["x-gateway-provider"] == "alpha"
    # An update: a new stamped directory, a temporary link, renamed over ..data.
    write_config(mount / "..2025_01_01_00_05_00.2", config_text(fleet, "beta/sim-b"))
    (mount / "..data_tmp").symlink_to("..2025_01_01_00_05_00.2")
    os.replace(mount / "..data_tmp", mount / "..data")
    for old in (mount / "..2025_01_01_00_00_00.1").iterdir():
        old.unlink()
    (mount / "..2025_01_01_00_00_00.1").rmdir()
    eventually(lambda: first_deployment(gw) == "beta/sim-b", timeout=5)
    assert ask(gw, "swapped")["x-gateway-provider"] == "beta"


def _yaml_syntax(text: str) -> str:
    return text.replace("  other:\n", "  other: [\n")


def _unknown_provider(text: str) -> str:
    return text.replace("[alpha/sim-a, beta/sim-b]", "[alpha/sim-a, beta/sim-b, nobody/x]")


def _missing_env(text: str) -> str:
    return re.sub(r'(  beta: .*base_url: )"[^"]*"', r'\1"${GW_TEST_UNSET_URL}"', text)


def _negative_timeout(text: str) -> str:
    return text.replace("timeouts: {connect: 0.5,", "timeouts: {connect: -1,")


def _duplicate_alias(text: str) -> str:
    return text + "  chat:\n    fallbacks: [gamma/sim-g]\n"


INVALID = [
    ("yaml syntax error", _yaml_syntax, r"line 1\d, column \d+: YAML syntax error"),
    (
        "unknown provider",
        _unknown_provider,
        r"line 11: routes\.chat\.fallbacks\[2\]: unknown provider 'nobody' \(known: alpha, beta, "
        r"gamma\)",
    ),
    (
        "missing env variable",
        _missing_env,
        r"line 7: providers\.beta\.base_url: environment variable GW_TEST_UNSET_URL is not set "
        r"\(export it, or write \$\{GW_TEST_UNSET_URL:-default\}\)",
    ),
    (
        "negative timeout",
        _negative_timeout,
        r"line 2: timeouts\.connect: Input should be greater than 0",
    ),
    (
        "duplicate alias",
        _duplicate_alias,
        r"line 14: duplicate key 'chat' \(first defined on line 10\)",
    ),
]


@pytest.mark.parametrize(
    ("breakage", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_an_invalid_file_is_rejected_precisely_and_the_old_config_keeps_serving(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway], breakage: Any, message: str
) -> None:
    path = write_config(tmp_path / "conf", config_text(fleet))
    gw = start_in_process(path, watch=False)
    gateways.append(gw)
    version = ask(gw)["x-gateway-config-version"]
    replace_file(path, breakage(path.read_text()))
    response = gw.admin().post("/admin/reload")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert f"still serving {version}" in error["message"]
    assert any(re.match(message, p) for p in error["problems"]), error["problems"]
    status = gw.admin().get("/admin/status").json()
    assert status["reload"]["rejections"] == 1
    assert status["reload"]["last"]["outcome"] == "rejected"
    assert status["reload"]["last_error"].startswith(f"{path}: line ")
    public = httpx.get(gw.url + "/status").json()["config_reload"]  # the status endpoint
    assert public == {"rejections": 1, "last_error": status["reload"]["last_error"]}
    metrics = httpx.get(gw.url + "/metrics").text
    assert "gateway_config_reload_rejections_total 1.0" in metrics.splitlines()
    assert ask(gw, "still")["x-gateway-config-version"] == version
    audit = gw.admin().get("/admin/audit").json()["entries"]
    assert audit[-1]["action"] == "reload_rejected" and audit[-1]["actor"] == "admin"


def test_the_watch_rejects_an_invalid_file_once_and_takes_the_fix(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    path = write_config(tmp_path / "conf", config_text(fleet))
    gw = start_in_process(path)
    gateways.append(gw)

    def rejections() -> int:
        return int(gw.admin().get("/admin/status").json()["reload"]["rejections"])

    replace_file(path, _unknown_provider(path.read_text()))
    eventually(lambda: rejections() == 1, timeout=5)
    (path.parent / "unrelated.txt").write_text("noise in the same directory")
    time.sleep(0.6)
    assert rejections() == 1  # the same bad content is not rejected (and counted) again
    assert ask(gw)["x-gateway-provider"] == "alpha"
    replace_file(path, config_text(fleet, "beta/sim-b"))
    eventually(lambda: first_deployment(gw) == "beta/sim-b", timeout=5)


def test_requests_in_flight_finish_on_the_config_they_started_with(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    path = write_config(tmp_path / "conf", config_text(fleet))
    gw = start_in_process(path, watch=False)
    gateways.append(gw)
    version = gw.version()
    fleet["alpha"].set_fault(FaultSpec(kind="latency", delay_ms=800))
    result: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: result.update(headers=ask(gw, "slow")))
    slow.start()
    eventually(lambda: fleet["alpha"].stats().in_flight == 1)
    replace_file(path, config_text(fleet, "beta/sim-b"))  # alpha leaves the alias
    assert gw.admin().post("/admin/reload").json()["outcome"] == "accepted"
    assert ask(gw, "new")["x-gateway-provider"] == "beta"
    slow.join(timeout=10)
    assert result["headers"]["x-gateway-provider"] == "alpha"
    assert result["headers"]["x-gateway-config-version"] == version


def test_breakers_of_unchanged_deployments_survive_a_reload(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    slow_breaker = "breaker: {consecutive_failures: 2, open_seconds: 60, max_open_seconds: 60}"
    text = re.sub(r"breaker: \{.*\}", slow_breaker, config_text(fleet))
    path = write_config(tmp_path / "conf", text)
    gw = start_in_process(path, watch=False)
    gateways.append(gw)
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=503))
    for i in range(2):
        assert ask(gw, f"trip{i}")["x-gateway-provider"] == "beta"

    def alpha() -> dict[str, Any]:
        aliases = gw.admin().get("/admin/routes").json()["aliases"]
        return next(
            d for a in aliases for d in a["deployments"] if d["deployment"] == "alpha/sim-a"
        )

    assert alpha()["breaker"] == "open"
    # gamma's route changes; alpha's provider does not: its breaker stays open
    replace_file(path, path.read_text().replace("[gamma/sim-g]", "[gamma/sim-g, beta/sim-x]"))
    assert gw.admin().post("/admin/reload").json()["outcome"] == "accepted"
    assert alpha()["breaker"] == "open"
    # alpha's provider settings change: it is a new deployment, with a fresh breaker
    text = path.read_text().replace(
        f'base_url: "{fleet["alpha"].openai_base_url}"',
        f'base_url: "{fleet["alpha"].openai_base_url}", headers: {{x-team: a}}',
    )
    replace_file(path, text)
    assert gw.admin().post("/admin/reload").json()["outcome"] == "accepted"
    assert alpha()["breaker"] == "closed"


def test_sighup_reloads(fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]) -> None:
    path = write_config(tmp_path / "conf", config_text(fleet))
    gw = start_process(path, {}, "--no-watch")
    gateways.append(gw)
    assert first_deployment(gw) == "alpha/sim-a"
    replace_file(path, config_text(fleet, "beta/sim-b, alpha/sim-a"))
    time.sleep(0.3)
    assert first_deployment(gw) == "alpha/sim-a"  # not watching: nothing happens by itself
    assert gw.process is not None
    gw.process.send_signal(signal.SIGHUP)
    eventually(lambda: first_deployment(gw) == "beta/sim-b", timeout=5)
    assert gw.process.poll() is None  # SIGHUP must not kill it
    last = gw.admin().get("/admin/audit").json()["entries"][-1]
    assert (last["action"], last["actor"]) == ("reload", "sighup")


def test_the_watch_counts_only_the_config_file_and_the_configmap_link() -> None:
    from watchfiles import Change

    from gateway.control.watch import ConfigEvents

    relevant = ConfigEvents("providers.yaml")
    assert relevant(Change.modified, "/etc/gateway/providers.yaml")
    assert relevant(Change.added, "/etc/gateway/..data")  # the kubelet's rename over ..data
    for noise in ("gateway.log", "providers.yaml.swp", "..data_tmp", "..2025_01_01.1"):
        assert not relevant(Change.modified, f"/etc/gateway/{noise}"), noise


def test_request_log_switches_follow_a_reload_and_other_telemetry_waits_for_a_restart(
    fleet: VendorFleet,
    tmp_path: Path,
    gateways: list[AdminGateway],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An SRE turns prompt logging on, then the request lines off, without a restart;
    a change that needs one (the service name) is accepted and says so."""
    caplog.set_level(logging.INFO, logger="gateway.requests")

    def telemetry(logs: str, more: str = "") -> str:
        return config_text(fleet, extra=f"telemetry: {{logs: {{output: logger{logs}}}{more}}}\n")

    def reload(text: str) -> list[str]:
        replace_file(path, text)
        outcome = gw.admin().post("/admin/reload").json()
        assert outcome["outcome"] == "accepted"
        return list(outcome["notes"])

    path = write_config(tmp_path / "conf", telemetry(""))
    gw = start_in_process(path, watch=False)
    gateways.append(gw)
    ask(gw, "before")
    notes = reload(telemetry(", prompts: true"))
    assert "telemetry.logs.prompts: False -> True" in notes
    assert not [n for n in notes if "restart" in n]
    ask(gw, "with its prompt")
    reload(telemetry(", prompts: true, requests: false"))
    ask(gw, "not logged")
    gw.admin().post("/v1/chat/completions")  # refused before routing: no line either
    notes = reload(telemetry("", ", service_name: renamed"))
    assert "telemetry: changed in the file; takes effect at the next restart" in notes[-1]
    ask(gw, "after")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.requests"]
    prompts = [line.get("prompt", "no prompt key") for line in lines]
    assert prompts == [
        "no prompt key",
        [{"role": "user", "content": "with its prompt"}],
        "no prompt key",
    ]
