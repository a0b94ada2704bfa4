"""monitoring/: the Prometheus rules pass promtool and their unit tests, a real /metrics
scrape passes `promtool check metrics`, and every metric the rules and the Grafana
dashboard query is one the gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from gateway.config import load_text
from gateway.server import bind, build_server, serve_in_thread
from gateway.simulator import FaultSpec, VendorFleet
from tests.conftest import FAST, config_for
from tests.test_health_probes import wait_for

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
RULES = MONITORING / "prometheus" / "alerts.yml"
RULE_TESTS = MONITORING / "prometheus" / "alerts_test.yml"
DASHBOARD = MONITORING / "grafana" / "failover-gateway.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install it with `apt-get install prometheus` (Debian/Ubuntu)",
)
METRIC = re.compile(r"\bgateway_[a-z_]+\b")
CORE = {
    "gateway_requests_total", "gateway_attempts_total", "gateway_failovers_total",
    "gateway_breaker_state", "gateway_breaker_transitions_total",
    "gateway_request_duration_seconds", "gateway_time_to_first_token_seconds",
    "gateway_tokens_total", "gateway_cost_usd_total", "gateway_deployment_state",
    "gateway_alias_available_deployments", "gateway_deployment_in_flight",
    "gateway_deployment_ttft_ewma_seconds", "gateway_probes_total", "gateway_ejections_total",
    "gateway_rejected_requests_total",
}  # fmt: skip
ROUTES = """
  chat:
    fallbacks:
      - alpha/sim-a
      - {provider: beta, model: sim-b, cost: {input_per_mtok: 3, output_per_mtok: 15}}
  spare:
    fallbacks: [gamma/sim-c]
"""


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def scrape(fleet: VendorFleet) -> Iterator[str]:
    """/metrics after traffic that fills every metric family: a failover, a stream,
    a tripped breaker, failing probes, an ejection and a request refused before routing."""
    extra = FAST + "health: {probe: {interval: 0.05, unhealthy_threshold: 2}}\n"
    loaded = load_text(config_for(fleet, ROUTES, extra=extra), "test")
    sock = bind("127.0.0.1", 0)
    server = build_server(loaded)
    thread = serve_in_thread(server, [sock])
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=10)
        fleet["alpha"].set_fault(FaultSpec(kind="status", status=503, paths=("chat",)))
        for i in range(3):  # three failovers trip alpha's breaker
            client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": f"x{i}"}]
            )
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "s"}], stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        list(stream)
        refused = httpx.post(url + "/v1/chat/completions", content=b"{", timeout=10)
        assert refused.status_code == 400  # counted as refused before routing
        fleet["gamma"].set_fault(FaultSpec(kind="status", status=503, paths=("models",)))
        wait_for(lambda: gamma_state(url) == "ejected", 5)
        yield httpx.get(url + "/metrics").text
    finally:
        fleet["alpha"].reset()
        fleet["gamma"].reset()
        server.should_exit = True
        thread.join(10)


def gamma_state(url: str) -> str:
    rows = httpx.get(url + "/status").json()["deployments"]
    return str(next(r["state"] for r in rows if r["deployment"] == "gamma/sim-c"))


def exported(text: str) -> set[str]:
    """Metric family names in a scrape, histogram series folded into their family."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            names.add(re.sub(r"_(bucket|count|sum)$", "", name))
    return names


def queried(text: str) -> set[str]:
    return {re.sub(r"_(bucket|count|sum)$", "", m) for m in METRIC.findall(text)}


@needs_promtool
def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_real_scrape_passes_promtool_check_metrics(scrape: str) -> None:
    result = promtool("check", "metrics", stdin=scrape)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""  # no lint findings


def test_rules_and_dashboard_query_only_exported_metrics(scrape: str) -> None:
    have = exported(scrape)
    rules = RULES.read_text()
    dashboard = DASHBOARD.read_text()
    assert queried(rules) <= have, queried(rules) - have
    assert queried(dashboard) <= have, queried(dashboard) - have
    # and the dashboard shows every family issue 3 asks for
    assert queried(dashboard) >= CORE, CORE - queried(dashboard)
    assert have >= CORE


def test_label_values_are_bounded(scrape: str) -> None:
    labels = set(re.findall(r"[{,]([a-z_]+)=", scrape))
    assert labels <= {"alias", "provider", "deployment", "outcome", "reason", "state", "type",
                      "result", "cause", "action", "endpoint", "code", "le"}  # fmt: skip
    # a refused request's label is the error code the gateway chose, never what was sent
    assert set(re.findall(r'[{,]code="([^"]*)"', scrape)) == {"invalid_json"}


def test_alerts_cover_what_an_sre_needs() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    assert set(alerts) == {
        "GatewayDeploymentUnhealthy", "GatewayAliasUnavailable", "GatewayFailoverRateHigh",
        "GatewayErrorBudgetBurnFast", "GatewayErrorBudgetBurnSlow", "GatewayCostRateHigh",
    }  # fmt: skip
    for rule in alerts.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_dashboard_is_importable() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "failover-gateway"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "alias", "provider"}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        for target in panel.get("targets") or []:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].strip()
