"""The status and explain endpoints, `gateway status` / `gateway explain`, and liveness /
readiness, against a running gateway."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import build
from gateway.simulator import FaultSpec, VendorFleet
from tests.conftest import FAST, RunningGateway, config_for
from tests.test_health_probes import ask, row, wait_for

ROUTES = """
  chat:
    fallbacks: [alpha/sim-a, beta/sim-b, gamma/sim-c]
  split:
    fallbacks:
      - {provider: alpha, model: sim-a, priority: 0, weight: 3}
      - {provider: delta, model: sim-d, priority: 0, weight: 1}
      - {provider: beta, model: sim-b, priority: 1}
"""
# Request logs go to logging here: CliRunner captures this process's stdout.
QUIET = FAST + "health: {probe: {kind: none}}\ntelemetry: {logs: {output: logger}}\n"
FIELDS = {
    "deployment", "provider", "model", "aliases", "state", "why", "since", "until",
    "retry_in_seconds", "in_flight", "calls", "failures", "neutral", "success_rate",
    "last_error", "latency_ms", "ttft_ms", "breaker", "outlier", "probe",
}  # fmt: skip


@pytest.fixture
def gw(fleet: VendorFleet, start_gateway: Any) -> RunningGateway:
    return start_gateway(config_for(fleet, ROUTES, extra=QUIET))  # type: ignore[no-any-return]


def test_status_lists_every_deployment_with_its_figures(gw: RunningGateway) -> None:
    ask(gw, "one")
    report = httpx.get(gw.url + "/status").json()
    assert httpx.get(gw.url + "/v1/gateway/status").json()["deployments"] == report["deployments"]
    rows = {r["deployment"]: r for r in report["deployments"]}
    assert list(rows) == ["alpha/sim-a", "beta/sim-b", "gamma/sim-c", "delta/sim-d"]
    assert all(set(r) >= FIELDS for r in rows.values())
    alpha = rows["alpha/sim-a"]
    assert alpha["aliases"] == ["chat", "split"]
    assert (alpha["state"], alpha["calls"], alpha["failures"], alpha["success_rate"]) == (
        "healthy", 1, 0, 1.0,
    )  # fmt: skip
    assert alpha["latency_ms"]["p50"] > 0 and alpha["ttft_ms"]["p99"] > 0
    assert alpha["in_flight"] == 0 and alpha["last_error"] is None
    assert rows["beta/sim-b"]["success_rate"] is None  # no calls yet: unknown, not 100%
    assert report["aliases"] == {
        "chat": {"deployments": 3, "routable": 3},
        "split": {"deployments": 3, "routable": 3},
    }
    assert report["config_version"].startswith("1-") and report["draining"] is False


def test_states_why_and_since(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=503))
    for i in range(3):  # FAST: three failures in a row open the breaker
        ask(gw, f"fail {i}")
    fleet["beta"].set_fault(FaultSpec(kind="rate_limit", retry_after=30))
    ask(gw, "limited")
    gw.app.state().runtimes["gamma/sim-c"].drained = True
    alpha, beta, gamma = (row(gw, d) for d in ("alpha/sim-a", "beta/sim-b", "gamma/sim-c"))
    assert (alpha["state"], alpha["why"]) == ("breaker_open", "breaker open")
    assert alpha["since"] is not None and 0 < alpha["retry_in_seconds"] <= 0.5
    assert alpha["last_error"]["reason"] == "status_503"
    assert "HTTP 503" in alpha["last_error"]["message"]
    assert (alpha["calls"], alpha["failures"]) == (3, 3)
    assert (beta["state"], beta["why"]) == ("cooling_down", "rate_limited")
    assert 25 < beta["retry_in_seconds"] <= 30 and beta["neutral"] == 1
    assert (gamma["state"], gamma["why"]) == ("drained", "drained by an operator")
    fleet["alpha"].clear_faults()
    wait_for(lambda: row(gw, "alpha/sim-a")["state"] == "half_open", 2)


def test_in_flight_is_counted(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="latency", delay_ms=600))
    worker = threading.Thread(target=ask, args=(gw, "slow"))
    worker.start()
    wait_for(lambda: row(gw, "alpha/sim-a")["in_flight"] == 1, 2)
    worker.join(5)
    assert row(gw, "alpha/sim-a")["in_flight"] == 0


def test_explain_shows_tiers_shares_and_skips(gw: RunningGateway, fleet: VendorFleet) -> None:
    plan = httpx.get(gw.url + "/v1/gateway/explain/split").json()
    assert httpx.get(gw.url + "/explain/split").json() == plan
    assert [(s["deployment"], s["verdict"], s["tier"], s["tier_share"]) for s in plan["steps"]] == [
        ("alpha/sim-a", "candidate", 0, 0.75),
        ("delta/sim-d", "candidate", 0, 0.25),
        ("beta/sim-b", "candidate", 1, 1.0),
    ]
    assert (
        plan["steps"][0]["why"]
        == "healthy; tier 0, picked first for 75% of requests within its tier"
    )
    assert sorted(plan["will_try"][:2]) == ["alpha/sim-a", "delta/sim-d"]
    assert plan["will_try"][2] == "beta/sim-b"
    gw.app.state().runtimes["delta/sim-d"].drained = True
    fleet["alpha"].set_fault(FaultSpec(kind="rate_limit", retry_after=20))
    ask(gw, "cool alpha down")
    plan = httpx.get(gw.url + "/v1/gateway/explain/split").json()
    verdicts = {s["deployment"]: (s["verdict"], s["why"]) for s in plan["steps"]}
    assert verdicts == {
        "alpha/sim-a": ("skipped", "rate_limited"),
        "delta/sim-d": ("skipped", "drained by an operator"),
        "beta/sim-b": ("candidate", "healthy; tier 1"),
    }
    assert plan["will_try"] == ["beta/sim-b"]


def test_explain_unknown_alias_is_an_openai_error(gw: RunningGateway) -> None:
    response = httpx.get(gw.url + "/v1/gateway/explain/nope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert "Configured models: chat, split" in error["message"]


def test_explain_when_nothing_is_left(gw: RunningGateway) -> None:
    for d in ("alpha/sim-a", "beta/sim-b", "gamma/sim-c"):
        gw.app.state().runtimes[d].drained = True
    plan = httpx.get(gw.url + "/v1/gateway/explain/chat").json()
    assert plan["will_try"] == [] and plan["outcome"].startswith("refused with 503")


def test_liveness_and_readiness_never_ask_vendors(gw: RunningGateway, fleet: VendorFleet) -> None:
    for name in ("alpha", "beta", "gamma", "delta"):
        fleet[name].set_fault(FaultSpec(kind="hang"))
    started = time.monotonic()
    assert httpx.get(gw.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gw.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert time.monotonic() - started < 1
    assert all(fleet[n].stats().total == 0 for n in ("alpha", "beta", "gamma", "delta"))


def cli(*args: str) -> Any:
    return CliRunner().invoke(build(), list(args), env={"COLUMNS": "250"})


def test_gateway_status_command(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["beta"].set_fault(FaultSpec(kind="rate_limit", retry_after=30))
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=500, count=1))
    ask(gw, "x")
    result = cli("status", "--url", gw.url)
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines()
             if line.count("│") > 5}  # fmt: skip
    assert "cooling_down" in lines["beta/sim-b"] and "rate_limited" in lines["beta/sim-b"]
    assert "healthy" in lines["alpha/sim-a"] and "status_500" in lines["alpha/sim-a"]
    assert "1 (1 failed)" in lines["alpha/sim-a"]
    raw = cli("status", "--url", gw.url, "--json")
    assert json.loads(raw.output)["deployments"][1]["state"] == "cooling_down"


def test_gateway_explain_command(gw: RunningGateway) -> None:
    gw.app.state().runtimes["alpha/sim-a"].drained = True
    result = cli("explain", "chat", "--url", gw.url)
    assert result.exit_code == 0, result.output
    assert "Plan for 'chat'" in result.output
    alpha = next(line for line in result.output.splitlines() if "alpha/sim-a" in line)
    assert "skipped" in alpha and "drained by an operator" in alpha
    beta = next(line for line in result.output.splitlines() if "beta/sim-b" in line)
    assert "candidate" in beta and beta.split("│")[1].strip() == "1"
    unknown = cli("explain", "nope", "--url", gw.url)
    assert unknown.exit_code == 1 and "does not exist on this gateway" in unknown.output


def test_commands_name_the_fix_when_no_gateway_answers() -> None:
    result = cli("status", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "No gateway answering at http://127.0.0.1:9" in result.output
    assert "gateway serve" in result.output and "--url" in result.output
