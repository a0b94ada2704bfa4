"""The gateway's fault-injection layer: rules, caps, the adapter wrapper, and end to end."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gateway.errors import (
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamStreamCut,
    UpstreamTimeout,
)
from gateway.providers.base import StreamEvent, UpstreamRequest, UpstreamResponse
from gateway.providers.fault_injection import (
    INJECTED_CODE,
    FaultInjectingAdapter,
    FaultInjectionConfig,
    FaultInjector,
    FaultRule,
    arm,
)
from gateway.simulator import VendorFleet, expected_answer
from tests.admin_harness import AdminGateway, gateways, start_in_process, write_config
from tests.conftest import FAST, provider_block

__all__ = ["gateways"]

pytestmark = pytest.mark.timeout(20)
ON = FaultInjectionConfig(enabled=True, max_requests=1000)


def rule(**fields: Any) -> FaultRule:
    return FaultRule.model_validate({"deployment": "alpha/m", "action": "abort", **fields})


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"action": "delay"}, "action 'delay' needs delay_ms > 0"),
        ({"deployment": "alpha"}, "String should match pattern"),
        ({"status": 200}, "greater than or equal to 400"),
        ({"percent": 0}, "greater than 0"),
        ({"percent": 101}, "less than or equal to 100"),
        ({"action": "explode"}, "Input should be 'abort', 'delay', 'stall' or 'cut'"),
        ({"color": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_rule_validation(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        rule(**fields)


@pytest.mark.parametrize(
    ("fields", "summary"),
    [
        ({}, "abort 503"),
        ({"status": 429, "percent": 25}, "abort 429 @25%"),
        ({"action": "delay", "delay_ms": 1500}, "delay 1500ms"),
        ({"action": "stall", "after_events": 3}, "stall after 3"),
        ({"action": "cut", "after_events": 0}, "cut after 0"),
    ],
)
def test_rule_summary(fields: dict[str, Any], summary: str) -> None:
    assert rule(**fields).describe() == summary


def test_injector_matches_deployment_rolls_percent_and_counts() -> None:
    injector = FaultInjector(ON, random.Random(1))
    injector.add(rule(percent=30))
    hits = sum(injector.pick("alpha/m") is not None for _ in range(2000))
    assert 500 < hits < 700  # 30% of 2000, give or take
    assert injector.pick("alpha/other") is None and injector.pick("beta/m") is None
    assert injector.affected == hits == injector.injected[("alpha/m", "abort")]
    assert injector.to_json()["rules"][0]["affected"] == hits


def test_rule_cap_and_lifetime_cap() -> None:
    injector = FaultInjector(FaultInjectionConfig(enabled=True, max_requests=5))
    first = injector.add(rule(max_requests=2))
    assert [injector.pick("alpha/m") is not None for _ in range(3)] == [True, True, False]
    assert first.spent and injector.to_json()["rules"][0]["active"] is False
    injector.add(rule())
    assert [injector.pick("alpha/m") is not None for _ in range(4)] == [True, True, True, False]
    view = injector.to_json()
    assert (view["affected"], view["remaining"], view["exhausted"]) == (5, 0, True)


def test_disabled_injector_never_injects_and_rules_can_be_removed() -> None:
    injector = FaultInjector(FaultInjectionConfig())
    active = injector.add(rule())
    assert injector.pick("alpha/m") is None and injector.affected == 0
    assert injector.for_deployment("alpha/m") == []  # listed, but it cannot hit anything
    assert injector.summary()["active_rules"] == 0
    assert injector.remove(active.id) and not injector.remove(active.id)
    injector.add(rule())
    injector.add(rule(action="cut"))
    assert injector.clear() == 2 and injector.rules == []


@dataclass
class FakeStream:
    events: list[StreamEvent]
    headers: Mapping[str, str] = field(default_factory=dict)
    closed: bool = False

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[StreamEvent]:
        for event in self.events:
            yield event

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeAdapter:
    calls: list[UpstreamRequest] = field(default_factory=list)
    stream_made: FakeStream | None = None
    closed: bool = False

    async def complete(self, request: UpstreamRequest) -> UpstreamResponse:
        self.calls.append(request)
        return UpstreamResponse(b"{}", {"choices": []}, {})

    async def stream(self, request: UpstreamRequest) -> FakeStream:
        self.calls.append(request)
        events = [StreamEvent(f"data: {i}\n\n".encode(), {"i": i}) for i in range(5)]
        self.stream_made = FakeStream(events)
        return self.stream_made

    async def aclose(self) -> None:
        self.closed = True


def request(first_token: float = 0.3, idle: float = 0.2) -> UpstreamRequest:
    return UpstreamRequest({"model": "m"}, "chat", 0.5, first_token, idle)


def wrapped(**fields: Any) -> tuple[FaultInjectingAdapter, FakeAdapter]:
    injector = FaultInjector(ON)
    injector.add(rule(**fields))
    inner = FakeAdapter()
    return FaultInjectingAdapter("alpha", inner, injector), inner


async def test_no_rule_passes_through() -> None:
    adapter, inner = wrapped(deployment="alpha/other")
    assert (await adapter.complete(request())).data == {"choices": []}
    assert len(inner.calls) == 1
    await adapter.aclose()
    assert inner.closed


async def test_abort_fails_before_the_vendor_is_called() -> None:
    adapter, inner = wrapped(status=502)
    for call in (adapter.complete, adapter.stream):
        with pytest.raises(UpstreamStatusError) as caught:
            await call(request())
        assert caught.value.status == 502 and caught.value.vendor_code == INJECTED_CODE
        assert "injected" in caught.value.message
    assert inner.calls == []


async def test_delay_spends_the_first_token_budget() -> None:
    adapter, inner = wrapped(action="delay", delay_ms=100)
    started = time.monotonic()
    await adapter.complete(request(first_token=0.3))
    assert time.monotonic() - started >= 0.1
    assert inner.calls[0].first_token_timeout == pytest.approx(0.2)
    slow, inner = wrapped(action="delay", delay_ms=5000)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as caught:
        await slow.stream(request(first_token=0.15))
    assert caught.value.phase == "first_token" and inner.calls == []
    assert 0.15 <= time.monotonic() - started < 1.0


async def test_non_streaming_stall_and_cut() -> None:
    stall, _ = wrapped(action="stall")
    with pytest.raises(UpstreamTimeout) as timed_out:
        await stall.complete(request(first_token=0.1))
    assert timed_out.value.phase == "first_token"
    cut, _ = wrapped(action="cut")
    with pytest.raises(UpstreamProtocolError, match="injected"):
        await cut.complete(request())


async def read(stream: Any) -> tuple[list[Any], BaseException | None]:
    seen = []
    try:
        async for event in stream:
            seen.append(event.data["i"])
    except Exception as exc:
        return seen, exc
    return seen, None


async def test_streams_are_cut_or_stalled_after_some_events() -> None:
    adapter, inner = wrapped(action="cut", after_events=2)
    seen, error = await read(await adapter.stream(request()))
    assert seen == [0, 1] and isinstance(error, UpstreamStreamCut)
    assert inner.stream_made is not None and inner.stream_made.closed
    adapter, inner = wrapped(action="stall", after_events=3)
    started = time.monotonic()
    seen, error = await read(await adapter.stream(request(idle=0.15)))
    assert seen == [0, 1, 2] and isinstance(error, UpstreamTimeout) and error.phase == "idle"
    assert time.monotonic() - started >= 0.15
    adapter, _ = wrapped(action="stall", after_events=0)
    seen, error = await read(await adapter.stream(request(first_token=0.1)))
    assert seen == [] and isinstance(error, UpstreamTimeout) and error.phase == "first_token"
    adapter, _ = wrapped(action="cut", after_events=50)  # the stream ends first: untouched
    assert (await read(await adapter.stream(request()))) == ([0, 1, 2, 3, 4], None)


def test_arm_wraps_only_while_enabled() -> None:
    inner = FakeAdapter()
    adapters: dict[str, Any] = {"alpha": inner}
    injector = FaultInjector(ON)
    arm(adapters, injector)
    arm(adapters, injector)  # idempotent: never a wrapper around a wrapper
    assert isinstance(adapters["alpha"], FaultInjectingAdapter)
    assert adapters["alpha"].inner is inner
    injector.config = FaultInjectionConfig(enabled=False)
    arm(adapters, injector)
    assert adapters["alpha"] is inner


# End to end over real sockets: rules go in through the admin API (its own port and
# token), the openai SDK on the API port sees their effect.

ROUTES = """
  chat:
    fallbacks: [alpha/sim-a, beta/sim-b]
"""


def start(fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway], extra: str) -> Any:
    text = FAST + extra + provider_block(fleet) + "routes:" + ROUTES
    gw = start_in_process(write_config(tmp_path / "conf", text), watch=False)
    gateways.append(gw)
    return gw


@pytest.fixture
def faulty(fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]) -> AdminGateway:
    return start(fleet, tmp_path, gateways, "fault_injection: {enabled: true, max_requests: 2}\n")


def add(gw: AdminGateway, **fields: Any) -> httpx.Response:
    return gw.admin().post("/admin/faults", json={"deployment": "alpha/sim-a", **fields})


def ask(gw: AdminGateway, prompt: str, stream: bool = False) -> tuple[dict[str, str], str]:
    client = gw.openai()
    messages: Any = [{"role": "user", "content": prompt}]
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model="chat", messages=messages)
        return dict(raw.headers), raw.parse().choices[0].message.content or ""
    with client.chat.completions.with_streaming_response.create(
        model="chat", messages=messages, stream=True
    ) as response:
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
        return dict(response.headers), text


def test_off_unless_enabled(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    gw = start(fleet, tmp_path, gateways, "")
    refused = add(gw, action="abort")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "fault_injection_disabled"
    assert "fault_injection: {enabled: true}" in error["message"]
    assert gw.admin().get("/admin/faults").json()["enabled"] is False
    assert httpx.get(gw.url + "/status").json()["fault_injection"]["enabled"] is False
    assert "gateway_fault_injection_enabled 0.0" in httpx.get(gw.url + "/metrics").text
    assert gw.app is not None
    adapters = gw.app.state().adapters.values()
    assert not any(isinstance(a, FaultInjectingAdapter) for a in adapters)


def test_rules_need_the_admin_token(faulty: AdminGateway) -> None:
    anonymous = httpx.post(faulty.admin_url + "/admin/faults", json={"action": "abort"})
    assert anonymous.status_code == 401
    assert faulty.admin("wrong-token").get("/admin/faults").status_code == 401
    assert httpx.get(faulty.url + "/admin/faults").status_code == 404  # not on the API port


def test_abort_through_the_admin_api(faulty: AdminGateway, fleet: VendorFleet) -> None:
    created = add(faulty, action="abort", status=503)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert (rule["summary"], rule["affected"], rule["active"]) == ("abort 503", 0, True)
    headers, text = ask(faulty, "injected abort")
    assert text == expected_answer("injected abort")
    assert headers["x-gateway-route"] == "alpha/sim-a=failover:status_503,beta/sim-b=ok"
    assert fleet["alpha"].stats().total == 0  # the vendor was never called
    listing = faulty.admin().get("/admin/faults").json()
    assert (listing["affected"], listing["remaining"]) == (1, 1)
    assert listing["rules"][0]["affected"] == 1
    # always visible: in the status report and in the metrics
    status = httpx.get(faulty.url + "/status").json()
    rows = {row["deployment"]: row for row in status["deployments"]}
    assert rows["alpha/sim-a"]["fault_injection"] == ["abort 503"]
    assert rows["beta/sim-b"]["fault_injection"] == []
    assert status["fault_injection"]["enabled"] is True
    assert status["fault_injection"]["active_rules"] == 1
    metrics = httpx.get(faulty.url + "/metrics").text
    assert "gateway_fault_injection_enabled 1.0" in metrics
    assert 'gateway_fault_injection_rules{deployment="alpha/sim-a",provider="alpha"} 1.0' in metrics
    assert (
        'gateway_fault_injection_injected_total{action="abort",deployment="alpha/sim-a"} 1.0'
        in metrics
    )
    removed = faulty.admin().delete(f"/admin/faults/{rule['id']}")
    assert removed.json() == {"removed": [rule["id"]]}
    assert ask(faulty, "healed")[0]["x-gateway-provider"] == "alpha"
    assert faulty.admin().delete(f"/admin/faults/{rule['id']}").status_code == 404


def test_cut_mid_stream_is_rescued(faulty: AdminGateway, fleet: VendorFleet) -> None:
    assert add(faulty, action="cut", after_events=3).status_code == 201
    headers, text = ask(faulty, "injected cut", stream=True)
    assert text == expected_answer("injected cut")  # one coherent stream, spliced
    assert headers["x-gateway-provider"] == "alpha"  # it started on alpha
    assert fleet["alpha"].stats().total == 1 and fleet["beta"].stats().total == 1


def test_cap_limits_how_many_requests_are_affected(faulty: AdminGateway) -> None:
    assert add(faulty, action="abort", status=500).status_code == 201
    served = [ask(faulty, f"capped {i}")[0]["x-gateway-provider"] for i in range(4)]
    assert served == ["beta", "beta", "alpha", "alpha"]  # (2 failures: the breaker stays shut)
    listing = faulty.admin().get("/admin/faults").json()
    assert (listing["affected"], listing["remaining"], listing["exhausted"]) == (2, 0, True)
    spent = add(faulty, action="abort")
    assert spent.status_code == 409
    assert spent.json()["error"]["code"] == "fault_injection_exhausted"
    assert faulty.admin().delete("/admin/faults").json() == {"removed": 1}


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"deployment": "alpha/sim-a", "action": "delay"}, 400, "invalid_value",
         "action 'delay' needs delay_ms > 0"),
        ({"deployment": "alpha/sim-a", "action": "abort", "percent": 150}, 400, "invalid_value",
         "percent: Input should be less than or equal to 100"),
        ({"deployment": "alpha/sim-a", "action": "abort", "colour": 1}, 400, "invalid_value",
         "colour: unknown key"),
        ({"deployment": "zeta/x", "action": "abort"}, 404, "unknown_deployment",
         "known: alpha/sim-a, beta/sim-b"),
        ("not an object", 400, "invalid_value", "Invalid fault rule"),
    ],
)  # fmt: skip
def test_bad_rules_are_refused_with_the_fix(
    faulty: AdminGateway, body: Any, status: int, code: str, says: str
) -> None:
    response = faulty.admin().post("/admin/faults", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"], error
    garbage = faulty.admin().post("/admin/faults", content=b"{nope")
    assert garbage.json()["error"]["code"] == "invalid_json"


def test_turned_on_by_a_config_reload(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    gw = start(fleet, tmp_path, gateways, "")
    assert add(gw, action="abort").status_code == 409
    text = gw.config_path.read_text()
    gw.config_path.write_text("fault_injection: {enabled: true, max_requests: 5}\n" + text)
    reloaded = gw.admin().post("/admin/reload")
    assert reloaded.status_code == 200, reloaded.text
    assert add(gw, action="abort", status=502).status_code == 201
    headers, _ = ask(gw, "after the reload")
    assert headers["x-gateway-route"] == "alpha/sim-a=failover:status_502,beta/sim-b=ok"
    gw.config_path.write_text(text)  # and off again: rules stay listed but never fire
    assert gw.admin().post("/admin/reload").status_code == 200
    assert ask(gw, "off again")[0]["x-gateway-route"] == "alpha/sim-a=ok"
    assert gw.admin().get("/admin/faults").json()["active_rules"] == 0
