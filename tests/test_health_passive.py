"""Passive outlier detection from real traffic: a 30% brownout ejects the vendor and the
status endpoint's figures match what the vendor actually returned; slow first tokens
eject too, and an ejection lifts on its own."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import openai

from gateway.simulator import FaultSpec, VendorFleet
from tests.conftest import config_for
from tests.test_health_probes import ask, row, wait_for

ROUTES = "  chat:\n    fallbacks: [alpha/sim-a, beta/sim-b]\n"


def extra(outlier: str) -> str:
    """Breakers that never trip and no probes: only outlier detection takes anyone out."""
    return f"""
timeouts: {{connect: 0.5, first_token: 1.5, idle: 0.8}}
retry: {{backoff_base: 0.01, backoff_max: 0.05}}
breaker: {{consecutive_failures: 100000, failure_rate: 1.0, min_calls: 100000}}
health:
  probe: {{kind: none}}
  outlier: {outlier}
"""


def test_brownout_ejects_and_status_matches_the_vendor(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    outlier = "{window_seconds: 60, min_calls: 20, failure_rate: 0.2, eject_seconds: 30}"
    gw = start_gateway(config_for(fleet, ROUTES, extra=extra(outlier)))
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=500, rate=0.3))
    routes = []
    for i in range(400):
        headers, _ = ask(gw, f"brownout {i}")  # every client request still succeeds
        routes.append(headers["x-gateway-route"])
        if routes[-1].startswith("alpha/sim-a=skipped:ejected"):
            break
    assert routes[-1] == "alpha/sim-a=skipped:ejected,beta/sim-b=ok"
    assert len(routes) >= 21  # not before min_calls

    seen = fleet["alpha"].stats()
    status = row(gw, "alpha/sim-a")
    assert status["state"] == "ejected"
    assert status["calls"] == seen.by_path["chat"] == seen.statuses[200] + seen.statuses[500]
    assert status["failures"] == seen.statuses[500]
    assert status["success_rate"] == round(seen.statuses[200] / seen.by_path["chat"], 4)
    assert status["last_error"]["reason"] == "status_500"
    assert status["breaker"]["state"] == "closed"  # outlier detection did it, not the breaker
    assert status["outlier"]["ejections"] == {"failure_rate": 1}
    assert status["retry_in_seconds"] > 25
    figures = re.search(
        r"failure rate \d+% \((\d+) of (\d+) calls in 60s\) reached 20%", status["why"]
    )
    assert figures, status["why"]
    failed, calls = int(figures[1]), int(figures[2])
    assert calls == seen.by_path["chat"] and failed == seen.statuses[500]  # one window
    assert failed / calls >= 0.2
    beta = row(gw, "beta/sim-b")
    assert beta["calls"] == fleet["beta"].stats().by_path["chat"] == seen.statuses[500] + 1
    assert beta["failures"] == 0 and beta["state"] == "healthy"


def test_slow_first_tokens_eject_then_the_ejection_lifts(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    outlier = (
        "{min_calls: 4, slow_call_seconds: 0.08, slow_call_rate: 0.75, eject_seconds: 0.5, "
        "ttft_ewma_alpha: 0.5}"
    )
    gw = start_gateway(config_for(fleet, ROUTES, extra=extra(outlier)))
    fleet["alpha"].set_fault(FaultSpec(kind="slow_first_token", delay_ms=120))
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=10)
    for i in range(4):
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": f"slow {i}"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    status = row(gw, "alpha/sim-a")
    assert status["state"] == "ejected"
    assert "slow-call rate 100% (4 of 4 calls over 0.08s)" in status["why"]
    assert status["ttft_ms"]["p50"] >= 120 and status["ttft_ms"]["ewma"] >= 120
    assert status["latency_ms"]["p50"] >= status["ttft_ms"]["p50"]
    assert status["failures"] == 0 and status["calls"] == 4
    headers, _ = ask(gw, "while ejected")
    assert headers["x-gateway-route"] == "alpha/sim-a=skipped:ejected,beta/sim-b=ok"
    fleet["alpha"].clear_faults()
    wait_for(lambda: row(gw, "alpha/sim-a")["state"] == "healthy", 2)
    headers, _ = ask(gw, "back")
    assert headers["x-gateway-route"] == "alpha/sim-a=ok"


def test_every_deployment_ejected_tries_the_least_bad(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    outlier = "{min_calls: 4, failure_rate: 0.5, eject_seconds: 60}"
    gw = start_gateway(config_for(fleet, ROUTES, extra=extra(outlier)))
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=500))  # 0% success
    fleet["beta"].set_fault(FaultSpec(kind="status", status=502, count=3))  # then healthy
    body = {"model": "chat", "messages": [{"role": "user", "content": "x"}]}
    deadline = time.monotonic() + 10
    while httpx.get(gw.url + "/status").json()["aliases"]["chat"]["routable"]:
        assert time.monotonic() < deadline
        httpx.post(gw.base_url + "/chat/completions", json=body, timeout=10)
    assert row(gw, "alpha/sim-a")["success_rate"] < row(gw, "beta/sim-b")["success_rate"]
    # Both are ejected: beta, the least bad, is still tried rather than refusing outright.
    response = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=10)
    assert response.status_code == 200
    assert response.headers["x-gateway-route"] == "alpha/sim-a=skipped:ejected,beta/sim-b=ok"
