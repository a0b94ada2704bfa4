"""`gateway chaos run | list | config`: exit status, report files, errors that name the fix."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gateway.chaos.library import scenario_paths
from gateway.commands import chaos

pytestmark = pytest.mark.timeout(60)

TINY = """
name: tiny
description: alpha hangs for a moment; beta covers.
vendors: [{name: alpha{alpha_port}}, {name: beta{beta_port}}]
gateway:
  timeouts: {connect: 0.5, first_token: 0.5, idle: 0.5}
  breaker: {consecutive_failures: 2, open_seconds: 0.3, max_open_seconds: 0.5}
  routes:
    chat: {fallbacks: [alpha/sim, beta/sim]}
load: {rate: 20, concurrency: 16, duration: 2.5, stream_share: 0.5}
faults:
  - {vendor: alpha, at: 0.5, duration: 1, fault: {kind: hang}}
slo:
  success_rate: 1.0
  p99_latency_ms: {p99}
"""


def app() -> typer.Typer:
    root = typer.Typer()
    chaos.register(root)
    return root


def write(tmp_path: Path, p99: float = 3000, ports: tuple[int, int] | None = None) -> Path:
    alpha, beta = (f", port: {ports[0]}", f", port: {ports[1]}") if ports else ("", "")
    path = tmp_path / "tiny.yaml"
    text = TINY.replace("{alpha_port}", alpha).replace("{beta_port}", beta)
    path.write_text(text.replace("{p99}", str(p99)))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(app(), ["chaos", *args], catch_exceptions=False)


def test_passing_run_writes_json_and_png_and_exits_0(tmp_path: Path) -> None:
    result = run("run", str(write(tmp_path)), "--report-dir", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "Scenario tiny (short): PASS" in result.output
    report = json.loads((tmp_path / "out" / "tiny-short.json").read_text())
    assert report["passed"] is True and report["totals"]["issued"] == 50
    assert report["totals"]["verdicts"] == {"complete": 50}
    assert {s["name"] for s in report["slos"]} >= {"success rate", "p99 latency", "nothing lost"}
    assert report["faults"] == [
        {"vendor": "alpha", "start": 0.5, "end": 1.5, "fault": "hang", "event": 0}
    ]
    assert len(report["seconds"]) == 3 and report["samples"]
    states = {s["breakers"].get("alpha") for s in report["samples"]}
    assert "available" in states and states - {"available"}, "the breaker view moved"
    png = (tmp_path / "out" / "tiny-short.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_missed_slo_exits_1(tmp_path: Path) -> None:
    result = run("run", str(write(tmp_path, p99=5)), "--report-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "FAIL" in result.output and "MISSED" in result.output
    assert json.loads((tmp_path / "tiny-short.json").read_text())["passed"] is False


def test_invalid_scenario_exits_2_naming_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(write(tmp_path).read_text().replace("kind: hang", "kind: hung"))
    result = run("run", str(bad))
    assert result.exit_code == 2
    assert "faults[0].fault: unknown fault kind" in result.output
    missing = run("run", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "file not found" in missing.output
    assert run("run", str(write(tmp_path)), "--profile", "long").exit_code == 2


def test_list_shows_the_library() -> None:
    result = CliRunner().invoke(app(), ["chaos", "list"], terminal_width=200)
    assert result.exit_code == 0
    for path in scenario_paths():
        assert path.stem in result.output


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in socks]
    for sock in socks:
        sock.close()
    return ports


def test_url_mode_against_a_running_gateway(tmp_path: Path, start_gateway: Any) -> None:
    port0 = run("config", str(write(tmp_path)))
    assert port0.exit_code == 2 and "give 'alpha' a fixed port" in port0.output
    scenario = write(tmp_path, ports=tuple(free_ports(2)))  # type: ignore[arg-type]
    config = run("config", str(scenario))
    assert config.exit_code == 0 and "providers:" in config.output
    gw = start_gateway(config.output)
    result = run("run", str(scenario), "--url", gw.url, "--report-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "tiny-short.json").read_text())
    assert report["gateway_url"] == gw.url
    assert report["totals"]["served_by"].keys() == {"alpha", "beta"}
    states = {s["breakers"].get("alpha") for s in report["samples"]}  # read from GET /status
    assert "available" in states and states - {"available"}
    unreachable = run("run", str(scenario), "--url", "http://127.0.0.1:9")
    assert unreachable.exit_code == 2 and "cannot reach the gateway" in unreachable.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = write(tmp_path, ports=(taken.getsockname()[1], free_ports(1)[0]))
        result = run("run", str(busy), "--url", gw.url)
    assert result.exit_code == 2 and "Cannot start the scenario's vendors" in result.output
