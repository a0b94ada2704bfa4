"""One contract, every adapter: the same assertions against each backend.

The pass-through adapter talks to the simulator's OpenAI API; the litellm adapter (kind
`anthropic`) talks to its Anthropic Messages API. Both must give the same OpenAI-format
answers and map every fault to the same exception, with exactly one vendor request per
call (no hidden retries).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr

from gateway.config import ProviderConfig
from gateway.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamStreamCut,
    UpstreamTimeout,
)
from gateway.providers.base import Adapter, StreamEvent, UpstreamRequest, UpstreamResponse
from gateway.providers.openai_compat import create_session
from gateway.providers.registry import build_adapter
from gateway.simulator import FaultSpec, VendorFleet, VendorHandle, VendorSpec, expected_answer

KEY = "sk-sim-contract-0123456789"
PROMPT = "Which river runs past the old mill?"
SHORT = 0.3  # timeout for faults that hang
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look something up.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@dataclass(frozen=True)
class Backend:
    kind: str
    base_url: Callable[[VendorHandle], str]
    path: str  # the simulator's endpoint this backend calls


BACKENDS = [
    Backend("openai", lambda v: v.openai_base_url, "chat"),
    Backend("anthropic", lambda v: v.base_url, "messages"),
]


@pytest.fixture(scope="module")
def keyed_fleet() -> Iterator[VendorFleet]:
    """A vendor of our own that checks the API key (the shared fleet's vendors do not)."""
    with VendorFleet.start([VendorSpec(name="keyed", api_key=KEY)]) as fleet:
        yield fleet


@pytest.fixture
def vendor(keyed_fleet: VendorFleet) -> VendorHandle:
    handle = keyed_fleet["keyed"]
    handle.reset()
    return handle


@pytest.fixture(params=BACKENDS, ids=[b.kind for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = create_session()
    yield s
    await s.close()


def make_adapter(
    backend: Backend, base_url: str, session: aiohttp.ClientSession, key: str = KEY
) -> Adapter:
    provider = ProviderConfig(kind=backend.kind, base_url=base_url, api_key=SecretStr(key))  # type: ignore[arg-type]
    return build_adapter(f"{backend.kind}-alpha", provider, session)


@pytest.fixture
def adapter(backend: Backend, vendor: VendorHandle, session: aiohttp.ClientSession) -> Adapter:
    return make_adapter(backend, backend.base_url(vendor), session)


def request(timeout: float = 5.0, **extra: Any) -> UpstreamRequest:
    body = {
        "model": "sim-large",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 500,
        **extra,
    }
    return UpstreamRequest(
        body=body,
        endpoint="chat",
        connect_timeout=timeout,
        first_token_timeout=timeout,
        idle_timeout=timeout,
    )


async def drain(adapter: Adapter, req: UpstreamRequest) -> list[StreamEvent]:
    stream = await adapter.stream(req)
    try:
        return [event async for event in stream]
    finally:
        await stream.aclose()


async def call(adapter: Adapter, req: UpstreamRequest, streaming: bool) -> Any:
    return await drain(adapter, req) if streaming else await adapter.complete(req)


def deltas(events: list[StreamEvent]) -> list[dict[str, Any]]:
    return [c["delta"] for e in events if e.data for c in e.data["choices"]]


def assert_one_request(vendor: VendorHandle, backend: Backend) -> dict[str, Any]:
    stats = vendor.stats()
    assert stats.total == 1, f"expected exactly one vendor request, got {stats.total}"
    assert stats.by_path == {backend.path: 1}
    body: dict[str, Any] = stats.requests[-1].body
    assert body["model"] == "sim-large"
    return body


# --- answers --------------------------------------------------------------------------


async def test_complete(adapter: Adapter, vendor: VendorHandle, backend: Backend) -> None:
    result = await adapter.complete(request())
    assert isinstance(result, UpstreamResponse)
    assert orjson.loads(result.raw) == result.data
    assert result.data["object"] == "chat.completion"
    assert result.data["model"] == "sim-large"
    choice = result.data["choices"][0]
    assert choice["message"]["content"] == expected_answer(PROMPT)
    assert choice["finish_reason"] == "stop"
    assert result.data["usage"]["total_tokens"] > 0
    assert "content-type" in {k.lower() for k in result.headers}
    assert_one_request(vendor, backend)


async def test_stream(adapter: Adapter, vendor: VendorHandle, backend: Backend) -> None:
    events = await drain(adapter, request())
    assert events[-1].is_done and events[-1].raw == b"data: [DONE]\n\n"
    assert sum(e.is_done for e in events) == 1
    chunks = [e.data for e in events if e.data is not None]
    assert len(chunks) == len(events) - 1
    for event in events[:-1]:
        assert event.raw.startswith(b"data: ") and event.raw.endswith(b"\n\n")
        assert orjson.loads(event.raw[6:]) == event.data
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert "".join(d.get("content") or "" for d in deltas(events)) == expected_answer(PROMPT)
    finishes = [c["finish_reason"] for chunk in chunks for c in chunk["choices"]]
    assert [f for f in finishes if f] == ["stop"]
    # Both kinds ask for usage by default (capabilities.stream_usage), so tokens are counted
    # for clients that do not ask: it comes on a chunk of its own, which the relay keeps
    # from such a client, never on a content chunk.
    assert not any(chunk.get("usage") for chunk in chunks if chunk["choices"])
    usage_only = [chunk for chunk in chunks if not chunk["choices"]]
    assert len(usage_only) == 1 and usage_only[0]["usage"]["total_tokens"] > 0
    body = assert_one_request(vendor, backend)
    assert body["stream"] is True
    if backend.kind == "openai":  # litellm takes the option itself and does not send it
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in body


async def test_stream_include_usage(adapter: Adapter) -> None:
    events = await drain(adapter, request(stream_options={"include_usage": True}))
    assert events[-1].is_done
    usage = events[-2].data
    assert usage is not None and usage["choices"] == []
    assert usage["usage"]["total_tokens"] > 0
    assert all(e.data is None or e.data["choices"] for e in events[:-2])


async def test_tool_call(adapter: Adapter, vendor: VendorHandle, backend: Backend) -> None:
    result = await adapter.complete(request(tools=TOOLS, tool_choice="required"))
    choice = result.data["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "lookup"
    assert orjson.loads(call["function"]["arguments"]) == {"query": PROMPT}
    assert "tools" in assert_one_request(vendor, backend)


async def test_tool_call_stream(adapter: Adapter) -> None:
    events = await drain(adapter, request(tools=TOOLS, tool_choice="required"))
    assert events[-1].is_done
    calls = [call for d in deltas(events) for call in d.get("tool_calls") or ()]
    assert calls[0]["id"] and calls[0]["function"]["name"] == "lookup"
    assert {call["index"] for call in calls} == {0}
    arguments = "".join(call["function"].get("arguments") or "" for call in calls)
    assert orjson.loads(arguments) == {"query": PROMPT}
    finishes = [c["finish_reason"] for e in events if e.data for c in e.data["choices"]]
    assert "tool_calls" in finishes


# --- faults ---------------------------------------------------------------------------

Check = Callable[[UpstreamError], None]


def status(code: int) -> Check:
    def check(err: UpstreamError) -> None:
        assert isinstance(err, UpstreamStatusError) and err.status == code

    return check


def timeout(phase: str) -> Check:
    def check(err: UpstreamError) -> None:
        assert isinstance(err, UpstreamTimeout) and err.phase == phase

    return check


def is_a(kind: type[UpstreamError]) -> Check:
    def check(err: UpstreamError) -> None:
        assert isinstance(err, kind), repr(err)

    return check


def rate_limited(err: UpstreamError) -> None:
    status(429)(err)
    assert err.headers["retry-after"] == "2"


def vendor_code(code: str) -> Check:
    def check(err: UpstreamError) -> None:
        assert isinstance(err, UpstreamStatusError) and err.status == 400
        assert err.vendor_code == code

    return check


BOTH = (False, True)
FAULTS: list[tuple[str, FaultSpec, tuple[bool, ...], Check]] = [
    ("503", FaultSpec(kind="status", status=503), BOTH, status(503)),
    ("500", FaultSpec(kind="status", status=500), BOTH, status(500)),
    ("529", FaultSpec(kind="status", status=529), BOTH, status(529)),
    ("429", FaultSpec(kind="rate_limit", retry_after=2), BOTH, rate_limited),
    ("reset", FaultSpec(kind="reset"), BOTH, is_a(UpstreamConnectError)),
    ("hang", FaultSpec(kind="hang"), BOTH, timeout("first_token")),
    ("cut", FaultSpec(kind="cut", after_chunks=4), (True,), is_a(UpstreamStreamCut)),
    ("cut body", FaultSpec(kind="cut"), (False,), is_a(UpstreamProtocolError)),
    ("stall", FaultSpec(kind="stall", after_chunks=4), (True,), timeout("idle")),
    ("stall body", FaultSpec(kind="stall"), (False,), timeout("first_token")),
    ("malformed", FaultSpec(kind="malformed", after_chunks=4), BOTH, is_a(UpstreamProtocolError)),
    ("context", FaultSpec(kind="context_length"), BOTH, vendor_code("context_length_exceeded")),
    ("policy", FaultSpec(kind="content_policy"), BOTH, vendor_code("content_policy_violation")),
]
CASES = [
    (name, fault, streaming, check) for name, fault, modes, check in FAULTS for streaming in modes
]


@pytest.mark.parametrize(
    ("fault", "streaming", "check"),
    [case[1:] for case in CASES],
    ids=[f"{c[0]}-{'stream' if c[2] else 'complete'}" for c in CASES],
)
async def test_fault(
    adapter: Adapter,
    vendor: VendorHandle,
    backend: Backend,
    fault: FaultSpec,
    streaming: bool,
    check: Check,
) -> None:
    vendor.set_fault(fault)
    with pytest.raises(UpstreamError) as info:
        await call(adapter, request(timeout=SHORT), streaming)
    check(info.value)
    assert KEY not in str(info.value)
    assert_one_request(vendor, backend)


async def test_no_done(adapter: Adapter, vendor: VendorHandle, backend: Backend) -> None:
    vendor.set_fault(FaultSpec(kind="no_done"))
    events = await drain(adapter, request())
    assert events and not any(e.is_done for e in events)
    assert "".join(d.get("content") or "" for d in deltas(events)) == expected_answer(PROMPT)
    assert_one_request(vendor, backend)


@pytest.mark.parametrize("streaming", BOTH)
async def test_connection_refused(
    backend: Backend, session: aiohttp.ClientSession, streaming: bool
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    suffix = "/v1" if backend.kind == "openai" else ""
    adapter = make_adapter(backend, f"http://127.0.0.1:{port}{suffix}", session)
    with pytest.raises(UpstreamConnectError):
        await call(adapter, request(), streaming)


@pytest.mark.parametrize("streaming", BOTH)
async def test_wrong_key(
    backend: Backend,
    vendor: VendorHandle,
    session: aiohttp.ClientSession,
    streaming: bool,
) -> None:
    wrong = "sk-wrong-key-9876543210abcdef"
    adapter = make_adapter(backend, backend.base_url(vendor), session, key=wrong)
    with pytest.raises(UpstreamStatusError) as info:
        await call(adapter, request(), streaming)
    assert info.value.status == 401
    error: BaseException | None = info.value
    while error is not None:  # not in ours, nor in anything it was raised from
        assert wrong not in str(error) and wrong not in repr(error)
        error = error.__cause__ or error.__context__
    assert_one_request(vendor, backend)
