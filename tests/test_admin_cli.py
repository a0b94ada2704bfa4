"""The SRE commands against a running gateway's admin API (real sockets; the CLI runs in
this process through typer's runner)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateway.cli import build
from gateway.simulator import VendorFleet
from tests.admin_harness import (
    TOKEN,
    AdminGateway,
    free_port,
    gateways,
    start_in_process,
    write_config,
)
from tests.test_admin_api import ask, config_text

__all__ = ["gateways"]


@pytest.fixture
def gw(fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]) -> AdminGateway:
    started = start_in_process(write_config(tmp_path / "conf", config_text(fleet)), watch=False)
    gateways.append(started)
    return started


def run(gw: AdminGateway | str, *args: str, token: str = TOKEN) -> Result:
    url = gw if isinstance(gw, str) else gw.admin_url
    env = {"GATEWAY_ADMIN_URL": url, "GATEWAY_ADMIN_TOKEN": token, "COLUMNS": "200"}
    return CliRunner().invoke(build(), list(args), env=env)


def test_routes_route_set_and_reset(gw: AdminGateway) -> None:
    listed = run(gw, "routes")
    assert listed.exit_code == 0, listed.output
    assert "alpha/sim-a" in listed.output and "available" in listed.output
    moved = run(gw, "route", "set", "chat", "beta/sim-b,alpha/sim-a", "--reason", "alpha slow")
    assert moved.exit_code == 0, moved.output
    assert "applied: set_order chat" in moved.output
    assert ask(gw, "cli")[1] == "beta"
    assert "chat *" in run(gw, "routes").output
    tier = run(gw, "route", "set", "chat", "alpha/sim-a+beta/sim-b")
    assert tier.exit_code == 0, tier.output
    weights = run(gw, "route", "weights", "chat", "alpha/sim-a=1000000,beta/sim-b=1")
    assert weights.exit_code == 0, weights.output
    assert ask(gw, "weighted")[1] == "alpha"
    assert run(gw, "route", "reset", "chat").exit_code == 0
    assert "chat *" not in run(gw, "routes").output


def test_drain_enable_disable_breaker_and_vendor_stop(gw: AdminGateway) -> None:
    drained = run(gw, "drain", "alpha/sim-a", "--wait", "5", "-r", "INC-9")
    assert drained.exit_code == 0, drained.output
    assert "in flight: 0" in drained.output and "alpha/sim-a: drained" in drained.output
    assert ask(gw, "d")[1] == "beta"
    assert run(gw, "enable", "alpha/sim-a").exit_code == 0
    assert run(gw, "disable", "alpha/sim-a").exit_code == 0
    assert ask(gw, "x")[1] == "beta"
    assert run(gw, "enable", "alpha/sim-a").exit_code == 0
    assert run(gw, "breaker", "alpha/sim-a", "open").exit_code == 0
    assert ask(gw, "y")[1] == "beta"
    assert run(gw, "breaker", "alpha/sim-a", "auto").exit_code == 0
    assert run(gw, "stop-vendor", "alpha").exit_code == 0
    assert ask(gw, "z", model="other")[1] == "gamma"
    assert run(gw, "start-vendor", "alpha").exit_code == 0
    assert ask(gw, "w")[1] == "alpha"
    audit = run(gw, "audit")
    assert audit.exit_code == 0
    # the gateway shares this process: its JSON request log lines land in the output too
    lines = [line for line in audit.output.splitlines() if " admin@" in line]
    assert len(lines) == 8
    assert "admin@" in lines[0] and "drain deployment=alpha/sim-a" in lines[0]
    assert "reason: INC-9" in lines[0]


def test_errors_name_the_cause_and_the_fix(gw: AdminGateway) -> None:
    bad = run(gw, "route", "set", "chat", "alpha/sim-a,nobody/m")
    assert bad.exit_code == 1
    assert "routes.chat.fallbacks[1]: unknown provider 'nobody'" in bad.output
    unknown = run(gw, "drain", "nope/x")
    assert unknown.exit_code == 1 and "unknown deployment 'nope/x'" in unknown.output
    denied = run(gw, "routes", token="wrong")
    assert denied.exit_code == 1 and "Invalid admin token" in denied.output
    down = run(f"http://127.0.0.1:{free_port()}", "routes")
    assert down.exit_code == 2 and "Cannot reach the admin API" in down.output
    assert "--admin-port" in down.output
    weights = run(gw, "route", "weights", "chat", "alpha/sim-a")
    assert weights.exit_code == 2 and "deployment=weight" in weights.output


def test_config_diff_show_status_and_reload(gw: AdminGateway, tmp_path: Path) -> None:
    same = tmp_path / "same.yaml"
    same.write_text(gw.config_path.read_text())
    assert run(gw, "config", "diff", str(same)).exit_code == 0
    changed = tmp_path / "changed.yaml"
    changed.write_text(same.read_text().replace("[alpha/sim-o, gamma/sim-g]", "[gamma/sim-g]"))
    diff = run(gw, "config", "diff", str(changed))
    assert diff.exit_code == 1, diff.output
    assert "routes.other.order: 'alpha/sim-o, gamma/sim-g' -> 'gamma/sim-g'" in diff.output
    assert "-    - alpha/sim-o" in diff.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(same.read_text().replace("timeouts: {connect: 0.5", "timeouts: {connect: -2"))
    invalid = run(gw, "config", "diff", str(broken))
    assert invalid.exit_code == 2
    assert "line 2: timeouts.connect: Input should be greater than 0" in invalid.output
    show = run(gw, "config", "show")
    assert show.exit_code == 0 and "api_key: <masked>" in show.output
    assert "sk-alpha-literal" not in show.output
    assert '"kind": "memory"' in run(gw, "config", "status").output
    gw.config_path.write_text(changed.read_text())
    reload = run(gw, "reload")
    assert reload.exit_code == 0 and "accepted: version 2-" in reload.output
    assert run(gw, "config", "diff", str(changed)).exit_code == 0
