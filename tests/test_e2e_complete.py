"""End to end, non-streaming: the official openai SDK -> gateway -> simulated vendors.

Every test asserts what the client received and what each vendor saw.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import openai
import pytest

from gateway.simulator import (
    FaultSpec,
    VendorFleet,
    VendorSpec,
    expected_answer,
    expected_embedding,
)
from tests.conftest import FAST, RunningGateway, config_for, provider_block

ROUTES = """
  chat:
    fallbacks: [alpha/sim-a, beta/sim-b]
  embed:
    fallbacks: [alpha/emb-a, beta/emb-b]
"""


@pytest.fixture
def gw(fleet: VendorFleet, start_gateway: Any) -> RunningGateway:
    return start_gateway(config_for(fleet, ROUTES))  # type: ignore[no-any-return]


def client(gw: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=15)


def ask(gw: RunningGateway, prompt: str = "hello", model: str = "chat", **kw: Any) -> Any:
    raw = client(gw).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **kw
    )
    return raw.headers, raw.parse()


def test_healthy_primary_serves_with_headers(gw: RunningGateway, fleet: VendorFleet) -> None:
    headers, completion = ask(gw, "what is failover")
    assert completion.choices[0].message.content == expected_answer("what is failover")
    assert completion.model == "sim-a"
    assert headers["x-gateway-provider"] == "alpha"
    assert headers["x-gateway-model"] == "sim-a"
    assert headers["x-gateway-attempts"] == "1"
    assert headers["x-gateway-route"] == "alpha/sim-a=ok"
    assert len(headers["x-request-id"]) >= 16
    alpha = fleet["alpha"].stats()
    assert alpha.total == 1 and fleet["beta"].stats().total == 0
    assert alpha.bodies[-1]["model"] == "sim-a"


def test_request_id_from_client_is_kept(gw: RunningGateway) -> None:
    response = httpx.post(
        gw.base_url + "/chat/completions",
        headers={"x-request-id": "abc-123"},
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (FaultSpec(kind="status", status=503), "status_503"),
        (FaultSpec(kind="status", status=500), "status_500"),
        (FaultSpec(kind="status", status=529), "status_529"),
        (FaultSpec(kind="reset"), "connect_error"),
        (FaultSpec(kind="hang"), "timeout_first_token"),
        (FaultSpec(kind="malformed"), "malformed_response"),
        (FaultSpec(kind="cut"), "malformed_response"),
    ],
    ids=lambda v: v.kind if isinstance(v, FaultSpec) else v,
)
def test_vendor_fault_fails_over_once(
    gw: RunningGateway, fleet: VendorFleet, fault: FaultSpec, reason: str
) -> None:
    fleet["alpha"].set_fault(fault)
    headers, completion = ask(gw, "fault test")
    assert completion.choices[0].message.content == expected_answer("fault test")
    assert headers["x-gateway-provider"] == "beta"
    assert headers["x-gateway-attempts"] == "2"
    assert headers["x-gateway-route"] == f"alpha/sim-a=failover:{reason},beta/sim-b=ok"
    assert fleet["alpha"].stats().total == 1  # tried once, not hammered
    assert fleet["beta"].stats().total == 1


def test_connection_refused_fails_over(fleet: VendorFleet, start_gateway: Any) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    config = (
        FAST
        + provider_block(fleet, ("beta",))
        + f'  dead: {{kind: openai_compatible, base_url: "http://127.0.0.1:{dead_port}/v1"}}\n'
        + "routes:\n  chat:\n    fallbacks: [dead/m, beta/sim-b]\n"
    )
    gw = start_gateway(config)
    headers, completion = ask(gw, "refused")
    assert completion.choices[0].message.content == expected_answer("refused")
    assert headers["x-gateway-route"] == "dead/m=failover:connect_error,beta/sim-b=ok"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_returned_without_retry(
    gw: RunningGateway, fleet: VendorFleet, status: int
) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=status))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(gw, "bad")
    assert caught.value.status_code == status
    assert caught.value.response.headers["x-gateway-attempts"] == "1"
    assert fleet["alpha"].stats().total == 1
    assert fleet["beta"].stats().total == 0


def test_short_retry_after_is_waited_out_on_the_same_vendor(
    gw: RunningGateway, fleet: VendorFleet
) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="rate_limit", retry_after=0.3, count=1))
    started = time.monotonic()
    headers, _ = ask(gw, "limited")
    assert time.monotonic() - started >= 0.3
    assert headers["x-gateway-provider"] == "alpha"
    assert headers["x-gateway-route"] == "alpha/sim-a=wait_same:rate_limited,alpha/sim-a=ok"
    assert fleet["alpha"].stats().total == 2 and fleet["beta"].stats().total == 0


def test_openai_reset_header_is_honoured(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="rate_limit", reset_header="200ms", count=1))
    headers, _ = ask(gw, "limited")
    assert headers["x-gateway-provider"] == "alpha"
    assert fleet["alpha"].stats().total == 2


def test_long_retry_after_cools_the_vendor_down(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="rate_limit", retry_after=30))
    headers, _ = ask(gw, "first")
    assert headers["x-gateway-route"] == "alpha/sim-a=failover:rate_limited,beta/sim-b=ok"
    headers, _ = ask(gw, "second")
    assert headers["x-gateway-route"] == "alpha/sim-a=skipped:cooling_down,beta/sim-b=ok"
    assert fleet["alpha"].stats().total == 1
    # a 429 is never a breaker failure
    assert gw.app.state().runtimes["alpha/sim-a"].breaker.state == "closed"


def test_bare_429_fails_over_and_never_loops(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="rate_limit"))
    for i in range(5):
        headers, _ = ask(gw, f"storm {i}")
        assert headers["x-gateway-provider"] == "beta"
    # the first 429 cools alpha down for ~0.5 s: the next requests skip it
    assert fleet["alpha"].stats().total <= 2


def test_bare_429_alone_backs_off_before_retrying(fleet: VendorFleet, start_gateway: Any) -> None:
    gw = start_gateway(config_for(fleet, "  solo:\n    fallbacks: [alpha/sim-a]\n"))
    fleet["alpha"].set_fault(FaultSpec(kind="rate_limit", count=1))
    started = time.monotonic()
    ask(gw, "solo", model="solo")
    assert time.monotonic() - started >= 0.15  # jittered cool-down of 0.15-0.45 s, not a tight loop
    assert fleet["alpha"].stats().total == 2


def test_context_length_moves_to_a_larger_window(fleet: VendorFleet, start_gateway: Any) -> None:
    routes = """
  long:
    fallbacks:
      - {provider: alpha, model: small, context_window: 4096}
      - {provider: beta, model: unknown-window}
      - {provider: gamma, model: big, context_window: 128000}
"""
    gw = start_gateway(config_for(fleet, routes))
    fleet["alpha"].set_fault(FaultSpec(kind="context_length"))
    headers, completion = ask(gw, "a long prompt", model="long")
    assert headers["x-gateway-provider"] == "gamma"
    assert fleet["beta"].stats().total == 0
    assert completion.choices[0].message.content == expected_answer("a long prompt")


def test_context_length_with_no_larger_window_is_returned(
    gw: RunningGateway, fleet: VendorFleet
) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="context_length"))
    with pytest.raises(openai.BadRequestError) as caught:
        ask(gw, "too long")
    assert caught.value.code == "context_length_exceeded"
    assert fleet["beta"].stats().total == 0


def test_content_policy_is_returned_with_its_reason(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="content_policy"))
    with pytest.raises(openai.BadRequestError) as caught:
        ask(gw, "forbidden")
    assert caught.value.code == "content_policy_violation"
    assert (
        "safety" in str(caught.value.message).lower()
        or "policy" in str(caught.value.message).lower()
    )
    assert fleet["beta"].stats().total == 0


def test_content_policy_can_be_configured_to_fail_over(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    routes = "  chat:\n    content_policy: failover\n    fallbacks: [alpha/sim-a, beta/sim-b]\n"
    gw = start_gateway(config_for(fleet, routes))
    fleet["alpha"].set_fault(FaultSpec(kind="content_policy"))
    headers, _ = ask(gw, "forbidden")
    assert headers["x-gateway-provider"] == "beta"


def test_all_failed_is_503_with_retry_after_and_every_attempt(
    gw: RunningGateway, fleet: VendorFleet
) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=503))
    fleet["beta"].set_fault(FaultSpec(kind="reset"))
    response = httpx.post(
        gw.base_url + "/chat/completions",
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "all_providers_failed"
    reasons = [(a["deployment"], a["reason"]) for a in error["attempts"]]
    assert ("alpha/sim-a", "status_503") in reasons and ("beta/sim-b", "connect_error") in reasons
    # with nothing else left each vendor gets at most one backed-off retry
    assert fleet["alpha"].stats().total <= 2 and fleet["beta"].stats().total <= 2


def test_breaker_opens_and_stops_traffic_to_a_dead_vendor(
    gw: RunningGateway, fleet: VendorFleet
) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=503))
    for i in range(8):
        headers, _ = ask(gw, f"dead {i}")
        assert headers["x-gateway-provider"] == "beta"
    assert fleet["alpha"].stats().total == 3  # consecutive_failures: 3, then open
    assert "alpha/sim-a=skipped:breaker_open" in headers["x-gateway-route"]
    fleet["alpha"].clear_faults()
    time.sleep(0.6)  # open_seconds: 0.5 -> half-open, the next request is the trial
    headers, _ = ask(gw, "back")
    assert headers["x-gateway-provider"] == "alpha"
    assert gw.app.state().runtimes["alpha/sim-a"].breaker.state == "closed"


def test_brownout_trips_the_breaker_on_failure_rate(start_gateway: Any) -> None:
    # seed 18 makes the 30% dice land at 30% over the first ten requests (3 of 10)
    specs = [VendorSpec(name="brown", seed=18), VendorSpec(name="spare")]
    extra = (
        FAST.replace("consecutive_failures: 3", "consecutive_failures: 100")
        .replace("open_seconds: 0.5", "open_seconds: 30")
        .replace("max_open_seconds: 2", "max_open_seconds: 60")
    )
    with VendorFleet.start(specs) as fleet:
        providers = provider_block(fleet, ("brown", "spare"))
        gw = start_gateway(
            extra + providers + "routes:\n  chat:\n    fallbacks: [brown/m, spare/m]\n"
        )
        fleet["brown"].set_fault(FaultSpec(kind="status", status=503, rate=0.3))
        for i in range(40):
            _, completion = ask(gw, f"brownout {i}")
            assert completion.choices[0].message.content == expected_answer(f"brownout {i}")
        seen = fleet["brown"].stats()
        assert gw.app.state().runtimes["brown/m"].breaker.state == "open"
        # it tripped as soon as the window held min_calls (10) with >= 25% failures
        assert seen.total == 10 and seen.statuses.get(503, 0) in (3, 4)
        assert seen.total < 40  # the open breaker kept the rest away


def test_client_deadline_header_shortens_the_wait(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="hang"))
    fleet["beta"].set_fault(FaultSpec(kind="hang"))
    started = time.monotonic()
    response = httpx.post(
        gw.base_url + "/chat/completions",
        headers={"x-gateway-timeout": "0.3"},
        json={"model": "chat", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 503
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "invalid_value"),
        (b'{"model": "chat", "messages": "hi"}', 400, "invalid_value"),
        (b'{"model": "chat", "messages": [{"content": "x"}]}', 400, "invalid_value"),
        (
            b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            400,
            "invalid_type",
        ),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model_not_found",
        ),
    ],
)
def test_bad_input_gets_openai_shaped_errors(
    gw: RunningGateway, fleet: VendorFleet, body: bytes, status: int, code: str
) -> None:
    response = httpx.post(
        gw.base_url + "/chat/completions",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and error["type"]
    assert fleet["alpha"].stats().total == 0


def test_unknown_model_via_sdk_is_not_found(gw: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        ask(gw, "x", model="gpt-unknown")
    assert "chat" in str(caught.value.message)


def test_wrong_method_and_unknown_path(gw: RunningGateway) -> None:
    assert httpx.get(gw.base_url + "/chat/completions").status_code == 405
    missing = httpx.get(gw.base_url + "/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_tools_response_format_and_extra_fields_pass_through(
    gw: RunningGateway, fleet: VendorFleet
) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    _, completion = ask(gw, "weather in Oslo", tools=tools, extra_body={"vendor_knob": {"x": 1}})
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup" and completion.choices[0].finish_reason == "tool_calls"
    seen = fleet["alpha"].stats().bodies[-1]
    assert seen["tools"] == tools and seen["vendor_knob"] == {"x": 1}
    _, completion = ask(gw, "json please", response_format={"type": "json_object"})
    import json

    assert isinstance(json.loads(completion.choices[0].message.content), dict)


def test_embeddings_and_models(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=502))
    result = client(gw).embeddings.create(model="embed", input=["one", "two"])
    assert [d.embedding for d in result.data] == [
        expected_embedding("one"),
        expected_embedding("two"),
    ]
    assert fleet["beta"].stats().bodies[-1]["model"] == "emb-b"
    models = client(gw).models.list()
    assert sorted(m.id for m in models.data) == ["chat", "embed"]
