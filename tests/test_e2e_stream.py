"""End to end, streaming: failover before the first token, rescue after it, never a
silent truncation or a hang."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.simulator import FaultSpec, VendorFleet, VendorSpec, expected_answer
from tests.conftest import FAST, RunningGateway, config_for

ROUTES = """
  chat:
    fallbacks: [alpha/sim-a, beta/sim-b]
"""


@pytest.fixture
def gw(fleet: VendorFleet, start_gateway: Any) -> RunningGateway:
    return start_gateway(config_for(fleet, ROUTES))  # type: ignore[no-any-return]


def stream(
    gw: RunningGateway, prompt: str, model: str = "chat", **kw: Any
) -> tuple[dict[str, str], list[Any]]:
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=15)
    with client.chat.completions.with_streaming_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], stream=True, **kw
    ) as response:
        chunks = list(response.parse())
        return dict(response.headers), chunks


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def raw_events(gw: RunningGateway, prompt: str, model: str = "chat") -> list[str]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
    with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, timeout=15) as r:
        return [line for line in r.iter_lines() if line.startswith("data: ")]


def test_healthy_stream_is_complete_with_done_and_usage(gw: RunningGateway) -> None:
    headers, chunks = stream(gw, "stream me", stream_options={"include_usage": True})
    assert text_of(chunks) == expected_answer("stream me")
    assert headers["x-gateway-provider"] == "alpha"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    events = raw_events(gw, "stream me")
    assert events[-1] == "data: [DONE]"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (FaultSpec(kind="status", status=503), "status_503"),
        (FaultSpec(kind="reset"), "connect_error"),
        (FaultSpec(kind="hang"), "timeout_first_token"),
        (FaultSpec(kind="slow_first_token", delay_ms=3000), "timeout_first_token"),
        (FaultSpec(kind="cut", after_chunks=1), "stream_cut"),
        (FaultSpec(kind="malformed", after_chunks=0), "malformed_response"),
        (FaultSpec(kind="rate_limit", retry_after=30), "rate_limited"),
    ],
    ids=lambda v: v.kind if isinstance(v, FaultSpec) else v,
)
def test_failover_before_first_token(
    gw: RunningGateway, fleet: VendorFleet, fault: FaultSpec, reason: str
) -> None:
    fleet["alpha"].set_fault(fault)
    headers, chunks = stream(gw, "before first token")
    assert text_of(chunks) == expected_answer("before first token")
    assert headers["x-gateway-provider"] == "beta"
    assert headers["x-gateway-route"] == f"alpha/sim-a=failover:{reason},beta/sim-b=ok"
    assert fleet["alpha"].stats().total == 1


def test_client_error_before_first_token_is_returned(
    gw: RunningGateway, fleet: VendorFleet
) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="status", status=400))
    with pytest.raises(openai.BadRequestError):
        stream(gw, "bad")
    assert fleet["beta"].stats().total == 0


@pytest.mark.parametrize("kind", ["cut", "stall", "malformed"])
def test_mid_stream_failure_is_spliced_from_a_replay(
    gw: RunningGateway, fleet: VendorFleet, kind: str
) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind=kind, after_chunks=4))  # type: ignore[arg-type]
    started = time.monotonic()
    headers, chunks = stream(gw, "rescue me please")
    assert text_of(chunks) == expected_answer("rescue me please")  # whole, nothing twice
    assert headers["x-gateway-provider"] == "alpha"  # committed before the failure
    assert time.monotonic() - started < 5
    replay = fleet["beta"].stats().bodies[-1]
    assert replay["messages"] == [{"role": "user", "content": "rescue me please"}]
    ids = {c.id for c in chunks}
    assert len(ids) == 1  # one coherent stream


def test_malformed_chunk_never_reaches_the_client(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="malformed", after_chunks=3))
    events = raw_events(gw, "malformed mid")
    import json

    for event in events[:-1]:
        json.loads(event[len("data: ") :])  # every relayed event is valid JSON
    assert events[-1] == "data: [DONE]"


def test_mid_stream_cut_is_continued_on_a_prefill_vendor(
    fleet: VendorFleet, start_gateway: Any
) -> None:
    config = config_for(fleet, ROUTES).replace(
        f'beta: {{kind: openai_compatible, base_url: "{fleet["beta"].openai_base_url}"}}',
        f'beta: {{kind: openai_compatible, base_url: "{fleet["beta"].openai_base_url}", '
        f"capabilities: {{prefill: true}}}}",
    )
    gw = start_gateway(config)
    fleet["alpha"].set_fault(FaultSpec(kind="cut", after_chunks=4))
    _, chunks = stream(gw, "continue me")
    assert text_of(chunks) == expected_answer("continue me")
    sent = fleet["beta"].stats().bodies[-1]["messages"]
    assert sent[-1]["role"] == "assistant"
    assert expected_answer("continue me").startswith(sent[-1]["content"]) and sent[-1]["content"]


def test_anthropic_vendor_continues_a_cut_stream(fleet: VendorFleet, start_gateway: Any) -> None:
    routes = "  chat:\n    fallbacks: [alpha/sim-a, gamma/claude-sim]\n"
    gw = start_gateway(config_for(fleet, routes, anthropic=("gamma",)))
    fleet["alpha"].set_fault(FaultSpec(kind="cut", after_chunks=4))
    _, chunks = stream(gw, "anthropic rescue")
    assert text_of(chunks) == expected_answer("anthropic rescue")
    seen = fleet["gamma"].stats().requests[-1]
    assert seen.path == "messages" and seen.body["messages"][-1]["role"] == "assistant"


def test_stream_without_done_is_finalised_promptly(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="no_done"))
    started = time.monotonic()
    events = raw_events(gw, "no done")
    assert time.monotonic() - started < 0.7  # well under the idle timeout
    assert events[-1] == "data: [DONE]"
    assert fleet["beta"].stats().total == 0


@pytest.fixture
def odd_fleet() -> Iterator[VendorFleet]:
    """A vendor that answers differently (another model) and one that rejects prefill."""
    specs = [
        VendorSpec(name="main"),
        VendorSpec(name="other", answer_salt="different model"),
        VendorSpec(name="strict", reject_prefill=True),
        VendorSpec(name="slow", chunks=20, chunk_delay_ms=100),
    ]
    with VendorFleet.start(specs) as running:
        yield running


def _odd_config(fleet: VendorFleet, fallbacks: str, prefill: str = "") -> str:
    providers = "providers:\n" + "".join(
        f'  {n}: {{kind: openai_compatible, base_url: "{fleet[n].openai_base_url}"'
        + (", capabilities: {prefill: true}" if n == prefill else "")
        + "}\n"
        for n in ("main", "other", "strict", "slow")
    )
    return FAST + providers + f"routes:\n  chat:\n    fallbacks: [{fallbacks}]\n"


def test_unrescuable_stream_ends_with_an_error_event(
    odd_fleet: VendorFleet, start_gateway: Any
) -> None:
    gw = start_gateway(_odd_config(odd_fleet, "main/m, other/m"))
    odd_fleet["main"].set_fault(FaultSpec(kind="cut", after_chunks=4))
    received = ""
    with pytest.raises(openai.APIError) as caught:
        client = openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=15)
        for chunk in client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "cannot splice"}], stream=True
        ):
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert "stream_cut" in str(caught.value.message)
    assert received and expected_answer("cannot splice").startswith(received)
    assert received != expected_answer("cannot splice")


def test_prefill_rejection_falls_back_to_splice_without_masking(
    odd_fleet: VendorFleet, start_gateway: Any
) -> None:
    gw = start_gateway(_odd_config(odd_fleet, "main/m, strict/m", prefill="strict"))
    odd_fleet["main"].set_fault(FaultSpec(kind="cut", after_chunks=4))
    _, chunks = stream(gw, "strict vendor")
    assert text_of(chunks) == expected_answer("strict vendor")
    bodies = odd_fleet["strict"].stats().bodies
    assert bodies[0]["messages"][-1]["role"] == "assistant"  # continuation tried first
    assert bodies[1]["messages"][-1]["role"] == "user"  # then the replay


def test_client_disconnect_cancels_the_upstream(odd_fleet: VendorFleet, start_gateway: Any) -> None:
    gw = start_gateway(_odd_config(odd_fleet, "slow/m"))
    body = {"model": "chat", "messages": [{"role": "user", "content": "long"}], "stream": True}
    with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, timeout=15) as r:
        for _ in r.iter_lines():
            break
    deadline = time.monotonic() + 2
    while odd_fleet["slow"].stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert odd_fleet["slow"].stats().in_flight == 0
    assert gw.app.state().runtimes["slow/m"].in_flight == 0


def test_tool_call_stream_stays_a_tool_call(gw: RunningGateway, fleet: VendorFleet) -> None:
    fleet["alpha"].set_fault(FaultSpec(kind="cut", after_chunks=3))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    _, chunks = stream(gw, "find the weather", tools=tools)
    args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    import json

    assert json.loads(args)  # complete, parseable arguments, nothing doubled
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_vendor_going_down_mid_stream_is_rescued_at_once(start_gateway: Any) -> None:
    """The chaos `down` and `flapping` faults: a vendor's port closes with streams in
    flight. The cut must be seen at the connection's end, not after the idle timeout."""
    idle = 5.0
    specs = [VendorSpec(name="paced", chunks=12, chunk_delay_ms=50), VendorSpec(name="spare")]
    with VendorFleet.start(specs) as vendors:
        providers = "".join(
            f'  {n}: {{kind: openai_compatible, base_url: "{vendors[n].openai_base_url}"}}\n'
            for n in ("paced", "spare")
        )
        gw = start_gateway(
            f"timeouts: {{connect: 0.5, first_token: 2, idle: {idle}}}\n"
            f"providers:\n{providers}routes:\n  chat:\n    fallbacks: [paced/m, spare/m]\n"
        )
        body = {"model": "chat", "messages": [{"role": "user", "content": "cut"}], "stream": True}
        events: list[str] = []
        down_at = 0.0
        with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, timeout=15) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line)
                if len(events) == 4 and not down_at:  # role + 3 tokens relayed
                    asyncio.run(vendors["paced"].go_down())
                    down_at = time.monotonic()
        took = time.monotonic() - down_at
        assert events[-1] == "data: [DONE]"
        text = "".join(
            json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events[:-1]
        )
        assert text == expected_answer("cut")  # spliced from the spare's replay
        assert vendors["spare"].stats().total == 1
        assert took < 0.5, f"the rest came {took:.2f}s after the vendor went down (idle {idle}s)"
