"""Active probes end to end: a vendor that goes down with no user traffic is marked
unhealthy by probes alone and skipped by the next request; it comes back the same way."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.simulator import FaultSpec, VendorFleet, expected_answer
from tests.conftest import FAST, RunningGateway, config_for, provider_block

ROUTES = "  chat:\n    fallbacks: [alpha/sim-a, beta/sim-b]\n"
INTERVAL, JITTER, TIMEOUT, DOWN_AFTER, UP_AFTER = 0.2, 0.1, 0.3, 2, 2
PROBES = (
    f"health: {{probe: {{interval: {INTERVAL}, jitter: {JITTER}, timeout: {TIMEOUT}, "
    f"unhealthy_threshold: {DOWN_AFTER}, healthy_threshold: {UP_AFTER}}}}}\n"
)
# The slowest a verdict may take: N probes, each up to one jittered interval plus its timeout.
DOWN_WINDOW = DOWN_AFTER * (INTERVAL * (1 + JITTER) + TIMEOUT)
UP_WINDOW = UP_AFTER * (INTERVAL * (1 + JITTER) + TIMEOUT)
SLACK = 0.6  # scheduling noise on a busy 2-core CI runner


def row(gw: RunningGateway, deployment: str) -> dict[str, Any]:
    rows = httpx.get(gw.url + "/status", timeout=5).json()["deployments"]
    return next(r for r in rows if r["deployment"] == deployment)


def wait_for(check: Callable[[], bool], limit: float) -> float:
    """Seconds until `check()` holds; fails the test after `limit`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            pytest.fail(f"condition not met within {limit:.1f}s")
        time.sleep(0.02)
    return time.monotonic() - started


def ask(gw: RunningGateway, prompt: str) -> tuple[httpx.Headers, str]:
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=10)
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": prompt}]
    )
    return raw.headers, raw.parse().choices[0].message.content or ""


def chat_calls(fleet: VendorFleet, name: str) -> int:
    return fleet[name].stats().by_path.get("chat", 0)


def test_down_without_traffic_then_skipped_then_back(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    gw = start_gateway(config_for(fleet, ROUTES, extra=FAST + PROBES))
    wait_for(lambda: row(gw, "alpha/sim-a")["probe"]["probes"] >= 1, 2)  # probing runs
    fleet["alpha"].set_fault(FaultSpec(kind="reset"))
    took = wait_for(lambda: row(gw, "alpha/sim-a")["state"] == "ejected", DOWN_WINDOW + SLACK)
    down = row(gw, "alpha/sim-a")
    assert took <= DOWN_WINDOW + SLACK
    assert down["why"].startswith(f"health probe failed {DOWN_AFTER} times in a row: ")
    assert "reset" in down["why"].lower()
    assert down["probe"]["healthy"] is False and down["since"] is not None
    assert chat_calls(fleet, "alpha") == chat_calls(fleet, "beta") == 0  # no user traffic yet

    headers, answer = ask(gw, "after the outage")
    assert headers["x-gateway-route"] == "alpha/sim-a=skipped:ejected,beta/sim-b=ok"
    assert answer == expected_answer("after the outage")
    assert chat_calls(fleet, "alpha") == 0  # the user never hit the dead vendor

    fleet["alpha"].clear_faults()
    took = wait_for(lambda: row(gw, "alpha/sim-a")["state"] == "healthy", UP_WINDOW + SLACK)
    assert took <= UP_WINDOW + SLACK
    assert chat_calls(fleet, "alpha") == 0  # back with zero client traffic in between
    headers, _ = ask(gw, "after the recovery")
    assert headers["x-gateway-route"] == "alpha/sim-a=ok"


def test_default_probe_bills_no_tokens(fleet: VendorFleet, start_gateway: Any) -> None:
    routes = ROUTES + "  claude:\n    fallbacks: [gamma/sim-c]\n"
    config = config_for(
        fleet, routes, extra=FAST + "health: {probe: {interval: 0.05}}\n", anthropic=("gamma",)
    )
    gw = start_gateway(config)
    wait_for(lambda: fleet["beta"].stats().by_path.get("models", 0) >= 4, 3)
    for name in ("alpha", "beta"):
        stats = fleet[name].stats()
        assert set(stats.by_path) == {"models"}  # GET /v1/models only: nothing billed
        assert all(r.path == "models" and r.body is None for r in stats.requests)
    # Anthropic has no model list on this simulator: its default probe is `none`.
    assert fleet["gamma"].stats().total == 0
    assert row(gw, "gamma/sim-c")["probe"]["probes"] == 0


@pytest.fixture
def quiet_fleet() -> Iterator[VendorFleet]:
    """Vendors no other test's gateway has talked to. On the session fleet, a probe that a
    stopped gateway sent just before it stopped may reach a vendor after the next test's
    reset (likelier on a loaded machine), and be counted as this test's traffic."""
    with VendorFleet.start(["alpha", "beta"]) as running:
        yield running


def test_completion_probe_when_configured(quiet_fleet: VendorFleet, start_gateway: Any) -> None:
    fleet = quiet_fleet
    extra = FAST + "health: {probe: {kind: completion, interval: 0.1, unhealthy_threshold: 2}}\n"
    gw = start_gateway(extra + provider_block(fleet, ("alpha", "beta")) + "routes:\n" + ROUTES)
    wait_for(lambda: chat_calls(fleet, "alpha") >= 2, 3)
    stats = fleet["alpha"].stats()
    assert all(b["model"] == "sim-a" and b["max_tokens"] == 1 for b in stats.bodies)
    assert stats.by_path == {"chat": stats.total}  # no model-list probes
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=500))
    wait_for(lambda: row(gw, "alpha/sim-a")["state"] == "ejected", 3)
    assert "HTTP 500" in row(gw, "alpha/sim-a")["why"]


def test_every_deployment_failing_probes_still_serves(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    """Probes fail everywhere (model lists down) but chat works: the least bad deployment
    is tried rather than refusing every request outright."""
    gw = start_gateway(config_for(fleet, ROUTES, extra=FAST + PROBES))
    for name in ("alpha", "beta"):
        fleet[name].set_fault(FaultSpec(kind="status", status=503, paths=("models",)))
    wait_for(
        lambda: httpx.get(gw.url + "/status").json()["aliases"]["chat"]["routable"] == 0,
        DOWN_WINDOW + SLACK,
    )
    plan = httpx.get(gw.url + "/v1/gateway/explain/chat").json()
    assert [s["verdict"] for s in plan["steps"]] == ["demoted", "skipped"]
    assert plan["will_try"] == ["alpha/sim-a"]
    assert plan["steps"][0]["why"].startswith("every deployment is unhealthy")
    headers, answer = ask(gw, "last resort")
    assert headers["x-gateway-route"] == "beta/sim-b=skipped:ejected,alpha/sim-a=ok"
    assert answer == expected_answer("last resort")


def test_a_429_storm_is_not_an_outage(fleet: VendorFleet, start_gateway: Any) -> None:
    """Found by the chaos scenario rate-limit-short-wait: probes answered 429 ejected the
    vendor, so traffic stayed away for healthy_threshold probes after the storm ended."""
    gw = start_gateway(config_for(fleet, ROUTES, extra=FAST + PROBES))
    wait_for(lambda: row(gw, "alpha/sim-a")["probe"]["probes"] >= 1, 2)
    fleet["alpha"].set_fault(FaultSpec(kind="rate_limit", retry_after=0.1))  # every path
    probes = row(gw, "alpha/sim-a")["probe"]["probes"]
    wait_for(lambda: row(gw, "alpha/sim-a")["probe"]["probes"] >= probes + DOWN_AFTER + 1, 5)
    assert fleet["alpha"].stats().faults.get("rate_limit", 0) >= DOWN_AFTER + 1  # probes met it
    alpha = row(gw, "alpha/sim-a")
    assert alpha["state"] == "healthy" and alpha["probe"]["healthy"] is True
    fleet["alpha"].clear_faults()
    headers, _ = ask(gw, "right after the storm")
    assert headers["x-gateway-route"] == "alpha/sim-a=ok"
