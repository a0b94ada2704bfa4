"""The simulated vendors, over real loopback sockets, with httpx and the official SDK."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from gateway.simulator import (
    FaultSpec,
    VendorFleet,
    VendorHandle,
    VendorSpec,
    expected_answer,
    expected_embedding,
    serve_vendors,
)
from gateway.simulator.__main__ import parse_args
from gateway.simulator.faults import FaultTable

pytestmark = pytest.mark.timeout(20)

SALT = "another-model"
KEY = "sk-sim-test"
TOOLS: Any = [
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
]


@pytest.fixture(scope="module")
def sim_fleet() -> Iterator[VendorFleet]:
    specs = [
        VendorSpec(name="alpha"),
        VendorSpec(name="beta"),
        VendorSpec(name="salty", answer_salt=SALT),
        VendorSpec(
            name="strict",
            api_key=KEY,
            reject_prefill=True,
            context_window=64,
            models=("strict-1",),
        ),
    ]
    with VendorFleet.start(specs) as running:
        yield running


@pytest.fixture(autouse=True)
def _healthy_vendors(sim_fleet: VendorFleet, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    for handle in sim_fleet:
        handle.reset()
    with caplog.at_level(logging.WARNING):
        yield
    # Faults must look like network trouble to the client, never like server crashes.
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert loud == []


@pytest.fixture
def alpha(sim_fleet: VendorFleet) -> VendorHandle:
    return sim_fleet["alpha"]


@pytest.fixture
def sdk(alpha: VendorHandle) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=alpha.openai_base_url, api_key="x", max_retries=0)
    yield client
    client.close()


def chat(prompt: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "m-1", "messages": [{"role": "user", "content": prompt}], **extra}


def anthropic(prompt: str = "hello there", **extra: Any) -> dict[str, Any]:
    body = {
        "model": "claude-x",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": prompt}],
    }
    return {**body, **extra}


def post(handle: VendorHandle, path: str, body: Any, **options: Any) -> httpx.Response:
    return httpx.post(
        handle.base_url + path, json=body, timeout=options.pop("timeout", 5), **options
    )


def sse(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) per SSE event."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        events.append((name, "\n".join(data)))
    return events


def stream_lines(
    handle: VendorHandle, body: Any, timeout: float = 5
) -> tuple[list[str], Exception | None]:
    """The `data:` lines a streaming chat request got, and the error that ended it, if any."""
    lines: list[str] = []
    try:
        with httpx.stream(
            "POST", handle.base_url + "/v1/chat/completions", json=body, timeout=timeout
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line:
                    lines.append(line)
    except httpx.HTTPError as exc:
        return lines, exc
    return lines, None


def contents(lines: list[str]) -> str:
    text = ""
    for line in lines:
        if line != "data: [DONE]":
            for choice in json.loads(line.removeprefix("data: "))["choices"]:
                text += choice["delta"].get("content") or ""
    return text


# --- pure parts -----------------------------------------------------------------------


def test_expected_answer_is_deterministic_and_salted() -> None:
    answer = expected_answer("hello there")
    assert answer == expected_answer("hello there")
    assert 24 <= len(answer.split()) <= 40
    assert answer != expected_answer("hello there!")
    assert answer != expected_answer("hello there", SALT)


def test_fault_table_counts_down_and_filters() -> None:
    rng = random.Random(0)
    table = FaultTable([FaultSpec(kind="status", status=503, count=2, paths=("chat",))])
    assert table.decide("embeddings", False, rng) is None
    assert table.decide("chat", False, rng) is not None
    assert table.active[0].count == 1
    assert table.decide("chat", True, rng) is not None
    assert table.decide("chat", False, rng) is None
    assert table.active == ()

    table.replace([FaultSpec(kind="no_done"), FaultSpec(kind="reset", stream=False)])
    assert table.decide("chat", True, rng) == FaultSpec(kind="no_done")
    assert table.decide("chat", False, rng) == FaultSpec(kind="reset", stream=False)

    table.replace([FaultSpec(kind="status", rate=0.5)])
    hits = [table.decide("chat", False, rng) is not None for _ in range(200)]
    assert 60 < sum(hits) < 140
    table.replace([FaultSpec(kind="status", rate=0.0)])
    assert all(table.decide("chat", False, rng) is None for _ in range(50))


def test_fault_spec_is_json_and_validated() -> None:
    spec = FaultSpec(kind="rate_limit", retry_after=2, paths=("chat", "messages"), count=3)
    assert FaultSpec.model_validate(json.loads(spec.model_dump_json())) == spec
    with pytest.raises(ValueError):
        FaultSpec.model_validate({"kind": "explode"})
    with pytest.raises(ValueError):
        FaultSpec(kind="latency")
    with pytest.raises(ValueError):
        FaultSpec(kind="status", status=200)


# --- OpenAI format --------------------------------------------------------------------


def test_sdk_chat_completion(sdk: openai.OpenAI) -> None:
    result = sdk.chat.completions.create(model="m-1", messages=[{"role": "user", "content": "hi"}])
    assert result.id.startswith("chatcmpl-")
    assert result.object == "chat.completion"
    assert result.model == "m-1"
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content == expected_answer("hi")
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.completion_tokens == len(expected_answer("hi").split())
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


def test_same_prompt_same_answer_on_every_vendor_unless_salted(sim_fleet: VendorFleet) -> None:
    answers = {
        handle.name: post(handle, "/v1/chat/completions", chat("same")).json()["choices"][0][
            "message"
        ]["content"]
        for handle in (sim_fleet["alpha"], sim_fleet["beta"], sim_fleet["salty"])
    }
    assert answers["alpha"] == answers["beta"] == expected_answer("same")
    assert answers["salty"] == expected_answer("same", SALT) != answers["alpha"]


def test_sdk_stream_with_usage(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="m-1",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert len(middle) == 8
    assert "".join(c.choices[0].delta.content or "" for c in middle) == expected_answer("stream me")
    assert finish.choices[0].finish_reason == "stop"
    assert finish.choices[0].delta.content is None
    assert usage.choices == []
    assert usage.usage is not None and usage.usage.completion_tokens > 0
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)


def test_raw_stream_wire_format(alpha: VendorHandle) -> None:
    response = post(alpha, "/v1/chat/completions", chat(stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")
    events = [data for _, data in sse(response.text)]
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(data) for data in events[:-1])

    with_usage = post(
        alpha, "/v1/chat/completions", chat(stream=True, stream_options={"include_usage": True})
    )
    chunks = [json.loads(data) for _, data in sse(with_usage.text)[:-1]]
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_prefill_gets_the_continuation(alpha: VendorHandle) -> None:
    answer = expected_answer("tell me")
    prefix = " ".join(answer.split()[:5])
    body = chat("tell me")
    body["messages"].append({"role": "assistant", "content": prefix})
    result = post(alpha, "/v1/chat/completions", body).json()
    assert result["choices"][0]["message"]["content"] == answer[len(prefix) :]

    lines, error = stream_lines(alpha, {**body, "stream": True})
    assert error is None and contents(lines) == answer[len(prefix) :]

    body["messages"][-1]["content"] = "Something else entirely"
    result = post(alpha, "/v1/chat/completions", body).json()
    assert result["choices"][0]["message"]["content"] == answer


def test_max_tokens_truncates_with_finish_length(alpha: VendorHandle) -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        body: dict[str, Any] = {**chat(), field: 5}
        choice = post(alpha, "/v1/chat/completions", body).json()["choices"][0]
        assert choice["message"]["content"] == " ".join(expected_answer("hello there").split()[:5])
        assert choice["finish_reason"] == "length"


def test_json_mode(alpha: VendorHandle) -> None:
    body = chat(response_format={"type": "json_object"})
    content = post(alpha, "/v1/chat/completions", body).json()["choices"][0]["message"]["content"]
    assert json.loads(content) == {"answer": expected_answer("hello there")}


def test_tool_calls(sdk: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "find cats"}]
    result = sdk.chat.completions.create(model="m-1", messages=messages, tools=TOOLS)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": "find cats"}

    named = sdk.chat.completions.create(
        model="m-1",
        messages=messages,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    named_calls = named.choices[0].message.tool_calls
    assert named_calls is not None
    assert isinstance(named_calls[0], ChatCompletionMessageFunctionToolCall)
    assert named_calls[0].function.name == "lookup"
    off = sdk.chat.completions.create(
        model="m-1", messages=messages, tools=TOOLS, tool_choice="none"
    )
    assert off.choices[0].message.content == expected_answer("find cats")

    answered = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "three cats"},
    ]
    after = sdk.chat.completions.create(model="m-1", messages=answered, tools=TOOLS)
    assert after.choices[0].finish_reason == "stop"


def test_streamed_tool_call(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="m-1",
            messages=[{"role": "user", "content": "find dogs"}],
            tools=TOOLS,
            stream=True,
        )
    )
    opening = chunks[0].choices[0].delta.tool_calls
    assert opening is not None and opening[0].index == 0
    assert opening[0].id is not None and opening[0].id.startswith("call_")
    assert opening[0].type == "function"
    assert opening[0].function is not None and opening[0].function.name == "search"
    assert opening[0].function.arguments == ""
    fragments = []
    for chunk in chunks[1:-1]:
        calls = chunk.choices[0].delta.tool_calls
        assert calls is not None and calls[0].function is not None
        fragments.append(calls[0].function.arguments or "")
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"query": "find dogs"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_embeddings(sdk: openai.OpenAI, alpha: VendorHandle) -> None:
    result = sdk.embeddings.create(model="embed-1", input=["one", "two"])  # SDK asks for base64
    assert [item.index for item in result.data] == [0, 1]
    assert result.data[0].embedding == expected_embedding("one")
    assert len(result.data[1].embedding) == 8
    plain = post(alpha, "/v1/embeddings", {"model": "embed-1", "input": "one"}).json()
    assert plain["object"] == "list" and plain["model"] == "embed-1"
    assert plain["data"][0]["embedding"] == expected_embedding("one")
    assert plain["usage"]["prompt_tokens"] == plain["usage"]["total_tokens"] > 0


def test_models(sdk: openai.OpenAI, sim_fleet: VendorFleet) -> None:
    assert [model.id for model in sdk.models.list()] == list(sim_fleet["alpha"].spec.models)
    strict = sim_fleet["strict"]
    listed = httpx.get(
        strict.openai_base_url + "/models", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert [model["id"] for model in listed.json()["data"]] == ["strict-1"]


def test_api_key_is_checked(sim_fleet: VendorFleet) -> None:
    strict = sim_fleet["strict"]
    wrong = openai.OpenAI(base_url=strict.openai_base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    right = openai.OpenAI(base_url=strict.openai_base_url, api_key=KEY, max_retries=0)
    assert right.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    denied = post(strict, "/v1/messages", anthropic("hi"))
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "authentication_error"
    assert (
        post(strict, "/v1/messages", anthropic("hi"), headers={"x-api-key": KEY}).status_code == 200
    )


def test_reject_prefill_and_context_window(sim_fleet: VendorFleet) -> None:
    strict = sim_fleet["strict"]
    auth = {"Authorization": f"Bearer {KEY}", "x-api-key": KEY}
    prefilled = chat("hi")
    prefilled["messages"].append({"role": "assistant", "content": "Sure"})
    refused = post(strict, "/v1/chat/completions", prefilled, headers=auth)
    assert refused.status_code == 400 and "prefill" in refused.json()["error"]["message"]
    anth = anthropic("hi")
    anth["messages"].append({"role": "assistant", "content": "Sure"})
    refused = post(strict, "/v1/messages", anth, headers=auth)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"

    long_prompt = "word " * 300
    too_long = post(strict, "/v1/chat/completions", chat(long_prompt), headers=auth)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 64 tokens" in too_long.json()["error"]["message"]
    too_long = post(strict, "/v1/messages", anthropic(long_prompt), headers=auth)
    assert "prompt is too long" in too_long.json()["error"]["message"]


def test_bad_requests(alpha: VendorHandle) -> None:
    broken = httpx.post(alpha.openai_base_url + "/chat/completions", content=b"{nope")
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
    assert post(alpha, "/v1/chat/completions", {"model": "m", "messages": []}).status_code == 400
    missing = post(
        alpha, "/v1/messages", {"model": "c", "messages": [{"role": "user", "content": "x"}]}
    )
    assert missing.status_code == 400 and missing.json()["type"] == "error"


# --- Anthropic format -----------------------------------------------------------------


def test_anthropic_message(alpha: VendorHandle) -> None:
    message = post(
        alpha, "/v1/messages", anthropic(), headers={"anthropic-version": "2023-06-01"}
    ).json()
    assert message["id"].startswith("msg_")
    assert (message["type"], message["role"], message["model"]) == (
        "message",
        "assistant",
        "claude-x",
    )
    assert message["content"] == [{"type": "text", "text": expected_answer("hello there")}]
    assert message["stop_reason"] == "end_turn"
    assert set(message["usage"]) == {"input_tokens", "output_tokens"}


def test_anthropic_stream_event_sequence(alpha: VendorHandle) -> None:
    response = post(alpha, "/v1/messages", anthropic(stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [(name, json.loads(data)) for name, data in sse(response.text)]
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 8,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert text == expected_answer("hello there")
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] > 0


def test_anthropic_tool_use(alpha: VendorHandle) -> None:
    tools = [{"name": "search", "input_schema": {"type": "object"}}]
    message = post(alpha, "/v1/messages", anthropic("find owls", tools=tools)).json()
    assert message["stop_reason"] == "tool_use"
    block = message["content"][0]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("search", {"query": "find owls"})

    streamed = post(alpha, "/v1/messages", anthropic("find owls", tools=tools, stream=True))
    events = [json.loads(data) for _, data in sse(streamed.text)]
    assert events[1]["content_block"] == {**block, "input": {}}
    partial = "".join(
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
    )
    assert json.loads(partial) == {"query": "find owls"}


# --- faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_status_fault(alpha: VendorHandle, status: int) -> None:
    alpha.set_fault(FaultSpec(kind="status", status=status))
    response = post(alpha, "/v1/chat/completions", chat())
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_anthropic_overloaded_and_server_errors(alpha: VendorHandle) -> None:
    alpha.set_faults(
        [FaultSpec(kind="status", status=529, count=1), FaultSpec(kind="status", status=503)]
    )
    overloaded = post(alpha, "/v1/messages", anthropic())
    assert overloaded.status_code == 529
    assert overloaded.json()["type"] == "error"
    assert overloaded.json()["error"]["type"] == "overloaded_error"
    assert post(alpha, "/v1/messages", anthropic()).json()["error"]["type"] == "api_error"


def test_rate_limit(alpha: VendorHandle, sdk: openai.OpenAI) -> None:
    alpha.set_fault(
        FaultSpec(kind="rate_limit", retry_after=2, retry_after_ms=1500, reset_header="2s")
    )
    limited = post(alpha, "/v1/chat/completions", chat())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["retry-after-ms"] == "1500"
    assert limited.headers["x-ratelimit-reset-requests"] == "2s"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"

    alpha.set_fault(FaultSpec(kind="rate_limit"))
    bare = post(alpha, "/v1/chat/completions", chat())
    assert bare.status_code == 429 and "retry-after" not in bare.headers
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert post(alpha, "/v1/messages", anthropic()).json()["error"]["type"] == "rate_limit_error"


def test_latency(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="latency", delay_ms=200))
    started = time.monotonic()
    response = post(alpha, "/v1/chat/completions", chat())
    assert time.monotonic() - started >= 0.2
    assert response.json()["choices"][0]["message"]["content"] == expected_answer("hello there")


def test_slow_first_token(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="slow_first_token", delay_ms=300))
    started = time.monotonic()
    with httpx.stream(
        "POST", alpha.base_url + "/v1/chat/completions", json=chat(stream=True)
    ) as response:
        headers_after = time.monotonic() - started
        body = response.read().decode()
        first_after = time.monotonic() - started
    assert headers_after < 0.25 <= 0.3 <= first_after
    assert body.endswith("data: [DONE]\n\n")

    alpha.set_fault(FaultSpec(kind="slow_first_token", delay_ms=200))
    started = time.monotonic()
    assert post(alpha, "/v1/chat/completions", chat()).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_hang_until_the_client_gives_up(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="hang"))
    with pytest.raises(httpx.ReadTimeout):
        post(alpha, "/v1/chat/completions", chat(), timeout=0.3)
    deadline = time.monotonic() + 2
    while alpha.stats().in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = alpha.stats()
    assert stats.in_flight == 0 and stats.faults == {"hang": 1} and stats.statuses == {}


def test_reset(alpha: VendorHandle, sdk: openai.OpenAI) -> None:
    alpha.set_fault(FaultSpec(kind="reset"))
    with pytest.raises(httpx.TransportError):
        post(alpha, "/v1/chat/completions", chat())
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert alpha.stats().faults == {"reset": 2}
    assert alpha.stats().statuses == {}


def test_malformed(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="malformed"))
    response = post(alpha, "/v1/chat/completions", chat())
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()

    lines, error = stream_lines(alpha, chat(stream=True))
    assert error is None and len(lines) == 3 and lines[-1] != "data: [DONE]"
    for line in lines[:2]:
        json.loads(line.removeprefix("data: "))
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[2].removeprefix("data: "))

    alpha.set_fault(FaultSpec(kind="malformed", after_chunks=1, resume=True))
    lines, error = stream_lines(alpha, chat(stream=True))
    assert error is None and lines[-1] == "data: [DONE]" and len(lines) == 1 + 1 + 9 + 1


def test_cut(alpha: VendorHandle, sdk: openai.OpenAI) -> None:
    alpha.set_fault(FaultSpec(kind="cut", after_chunks=3))
    lines, error = stream_lines(alpha, chat(stream=True))
    assert isinstance(error, httpx.RemoteProtocolError)
    assert len(lines) == 3 and "data: [DONE]" not in lines
    assert expected_answer("hello there").startswith(contents(lines))

    with pytest.raises(httpx.RemoteProtocolError):
        post(alpha, "/v1/chat/completions", chat())
    with pytest.raises(openai.APIConnectionError):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


def test_stall(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="stall"))
    lines, error = stream_lines(alpha, chat(stream=True), timeout=0.3)
    assert isinstance(error, httpx.ReadTimeout) and len(lines) == 2


def test_no_done_applies_to_streams_only(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="no_done", count=1))
    assert post(alpha, "/v1/chat/completions", chat()).status_code == 200
    assert alpha.faults() == (FaultSpec(kind="no_done", count=1),)
    lines, error = stream_lines(alpha, chat(stream=True))
    assert error is None and "data: [DONE]" not in lines
    assert json.loads(lines[-1].removeprefix("data: "))["choices"][0]["finish_reason"] == "stop"
    assert contents(lines) == expected_answer("hello there")
    assert alpha.faults() == ()

    alpha.set_fault(FaultSpec(kind="no_done"))
    events = [name for name, _ in sse(post(alpha, "/v1/messages", anthropic(stream=True)).text)]
    assert events[-1] == "message_delta"


def test_context_length_and_content_policy_faults(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="context_length"))
    error = post(alpha, "/v1/chat/completions", chat()).json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["message"].startswith("This model's maximum context length is 4096 tokens")
    assert (
        "prompt is too long" in post(alpha, "/v1/messages", anthropic()).json()["error"]["message"]
    )

    alpha.set_fault(FaultSpec(kind="content_policy"))
    response = post(alpha, "/v1/chat/completions", chat())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_policy_violation"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "safety system" in response.json()["error"]["message"]
    assert post(alpha, "/v1/messages", anthropic()).status_code == 400


def test_count_rate_paths_and_first_match(alpha: VendorHandle) -> None:
    alpha.set_fault(FaultSpec(kind="status", status=503, count=2))
    codes = [post(alpha, "/v1/chat/completions", chat()).status_code for _ in range(3)]
    assert codes == [503, 503, 200] and alpha.faults() == ()

    alpha.set_fault(FaultSpec(kind="status", status=500, rate=0.5))
    codes = [post(alpha, "/v1/chat/completions", chat()).status_code for _ in range(30)]
    assert {500, 200} == set(codes)

    alpha.set_fault(FaultSpec(kind="status", status=502, paths=("embeddings",)))
    assert post(alpha, "/v1/chat/completions", chat()).status_code == 200
    assert post(alpha, "/v1/embeddings", {"model": "e", "input": "x"}).status_code == 502

    alpha.set_faults([FaultSpec(kind="status", status=502), FaultSpec(kind="status", status=503)])
    assert post(alpha, "/v1/chat/completions", chat()).status_code == 502


# --- stats and control ----------------------------------------------------------------


def test_stats_record_what_the_vendor_saw(alpha: VendorHandle, sdk: openai.OpenAI) -> None:
    sdk.chat.completions.create(model="seen-model", messages=[{"role": "user", "content": "hi"}])
    sdk.embeddings.create(model="e", input="x")
    sdk.models.list()
    alpha.set_fault(FaultSpec(kind="status", status=503, count=1))
    post(alpha, "/v1/messages", anthropic(), headers={"x-api-key": "secret"})
    stats = alpha.stats()
    assert stats.total == 4 and stats.in_flight == 0
    assert stats.by_path == {"chat": 1, "embeddings": 1, "models": 1, "messages": 1}
    assert stats.statuses == {200: 3, 503: 1}
    assert stats.faults == {"status": 1}
    first = stats.requests[0]
    assert first.path == "chat" and first.body["model"] == "seen-model"
    assert "authorization" not in first.headers and "content-type" in first.headers
    assert "x-api-key" not in stats.requests[-1].headers
    assert stats.requests[2].body is None  # GET /v1/models
    assert stats.bodies[-1]["model"] == "claude-x"


def test_http_control(alpha: VendorHandle) -> None:
    control = alpha.base_url + "/_sim"
    added = httpx.post(control + "/faults", json={"kind": "status", "status": 502, "count": 1})
    assert added.status_code == 200 and added.json()[0]["status"] == 502
    assert alpha.faults() == (FaultSpec(kind="status", status=502, count=1),)
    assert httpx.post(control + "/faults", json={"kind": "nope"}).status_code == 400

    replaced = httpx.put(
        control + "/faults", json=[{"kind": "reset"}, {"kind": "hang", "rate": 0.1}]
    )
    assert [fault["kind"] for fault in replaced.json()] == ["reset", "hang"]
    assert [fault["kind"] for fault in httpx.get(control + "/faults").json()] == ["reset", "hang"]
    assert httpx.delete(control + "/faults").json() == []

    post(alpha, "/v1/chat/completions", chat())
    stats = httpx.get(control + "/stats").json()
    assert stats["total"] == 1 and stats["statuses"] == {"200": 1}
    assert stats["requests"][0]["body"]["model"] == "m-1"
    httpx.post(control + "/faults", json={"kind": "reset"})
    assert httpx.post(control + "/reset").status_code == 200
    assert alpha.stats().total == 0 and alpha.faults() == ()


# --- running --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "stream"),
    [
        (VendorSpec(name="solo", faults=(FaultSpec(kind="hang"),)), False),
        (VendorSpec(name="solo", faults=(FaultSpec(kind="latency", delay_ms=30_000),)), False),
        (VendorSpec(name="solo", faults=(FaultSpec(kind="stall"),)), True),
        (VendorSpec(name="solo", faults=(FaultSpec(kind="stall"),)), False),
        (VendorSpec(name="solo", chunk_delay_ms=30_000), True),
    ],
    ids=["hang", "latency", "stall-stream", "stall-body", "slow-stream"],
)
def test_fleet_stop_releases_waiting_requests(
    spec: VendorSpec, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = VendorFleet.start([spec])
    handle = fleet["solo"]
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            with httpx.stream(
                "POST", handle.openai_base_url + "/chat/completions", json=chat(stream=stream),
                timeout=10,
            ) as response:  # fmt: skip
                response.read()
            outcome.append(None)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=call)
    client.start()
    deadline = time.monotonic() + 5
    while handle.stats().in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    started = time.monotonic()
    fleet.stop()
    assert time.monotonic() - started < 1.0
    client.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)
    assert not any("destroyed" in record.getMessage() for record in caplog.records)


def test_unknown_path_is_an_openai_404(alpha: VendorHandle) -> None:
    missing = httpx.get(alpha.base_url + "/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_fleet_rejects_duplicates_and_busy_ports(alpha: VendorHandle) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        VendorFleet.start(["a", "a"])
    with pytest.raises(RuntimeError):
        VendorFleet.start([VendorSpec(name="busy", port=alpha.port)])


async def test_serve_vendors_in_a_running_loop() -> None:
    async with serve_vendors(["gamma", VendorSpec(name="delta", chunks=2)]) as handles:
        gamma, delta = handles["gamma"], handles["delta"]
        async with httpx.AsyncClient() as client:
            answer = await client.post(gamma.openai_base_url + "/chat/completions", json=chat("x"))
            assert answer.json()["choices"][0]["message"]["content"] == expected_answer("x")
            gamma.set_fault(FaultSpec(kind="status", status=503))
            failed = await client.post(gamma.openai_base_url + "/chat/completions", json=chat("x"))
            assert failed.status_code == 503
            streamed = await client.post(
                delta.openai_base_url + "/chat/completions", json=chat("x", stream=True)
            )
            assert len(sse(streamed.text)) == 1 + 2 + 1 + 1
        assert gamma.stats().statuses == {200: 1, 503: 1}


def test_cli_arguments() -> None:
    specs = parse_args(["--name", "a", "--port", "9001", "--name", "b", "--port", "9002"])
    assert [(spec.name, spec.port) for spec in specs] == [("a", 9001), ("b", 9002)]
    fault = parse_args(["--name", "a", "--fault", '{"kind": "reset", "rate": 0.5}'])[0].faults
    assert fault == (FaultSpec(kind="reset", rate=0.5),)


async def test_go_down_refuses_connections_and_come_up_reopens_the_port() -> None:
    async with serve_vendors(["epsilon"]) as handles:
        vendor = handles["epsilon"]
        url = vendor.openai_base_url + "/chat/completions"
        async with httpx.AsyncClient() as client:
            assert (await client.post(url, json=chat("up"))).status_code == 200  # pooled now
            port = vendor.port
            await vendor.go_down()
            assert not vendor.listening
            with pytest.raises(httpx.TransportError):
                await client.post(url, json=chat("down"))
            async with httpx.AsyncClient() as fresh:
                with pytest.raises(httpx.ConnectError):
                    await fresh.post(url, json=chat("down"))
            await vendor.come_up()
            assert vendor.listening and vendor.port == port
            answer = await client.post(url, json=chat("back"))
            assert answer.json()["choices"][0]["message"]["content"] == expected_answer("back")


def test_go_down_from_another_thread(alpha: VendorHandle) -> None:
    import asyncio

    asyncio.run(alpha.go_down())
    try:
        with pytest.raises(httpx.ConnectError):
            httpx.post(alpha.openai_base_url + "/chat/completions", json=chat("x"), timeout=5)
    finally:
        asyncio.run(alpha.come_up())
    assert httpx.post(alpha.openai_base_url + "/chat/completions", json=chat("x")).status_code == 200
