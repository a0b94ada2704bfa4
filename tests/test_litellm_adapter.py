"""Edge cases of the litellm adapter: result conversion, error translation, a fake vendor."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from aiohttp import web
from pydantic import SecretStr

from gateway.config import ProviderConfig
from gateway.errors import (
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamStreamCut,
    UpstreamTimeout,
)
from gateway.providers.base import UpstreamRequest
from gateway.providers.litellm_adapter import LiteLLMAdapter, _MalformedEvent, _Tap
from gateway.providers.litellm_convert import (
    chunk_to_openai,
    completion_to_openai,
    embedding_to_openai,
)
from gateway.providers.openai_compat import create_session
from tests.conftest import port_that_never_accepts

litellm = pytest.importorskip("litellm")
from litellm.types.utils import (  # noqa: E402
    EmbeddingResponse,
    ModelResponse,
    ModelResponseStream,
    Usage,
)

KEY = "sk-ant-edge-0123456789abcdef"
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-real",
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 2},
}


# --- conversion -----------------------------------------------------------------------


def stream_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> Any:
    choices: Any = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return ModelResponseStream(id="c1", created=7, model="anthropic/m", choices=choices, **extra)


USAGE = Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
TOOL_START = {
    "tool_calls": [
        {
            "index": 0,
            "id": "t1",
            "type": "function",
            "function": {"name": "lookup", "arguments": ""},
        }
    ]
}
TOOL_PIECE = {
    "tool_calls": [
        {"index": 0, "id": None, "type": "function", "function": {"name": None, "arguments": '{"q'}}
    ]
}
CHUNK_CASES = [
    (
        "text with role",
        stream_chunk({"role": "assistant", "content": "Hi"}),
        False,
        [[{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]],
    ),
    (
        "finish only",
        stream_chunk({}, "stop"),
        False,
        [[{"index": 0, "delta": {}, "finish_reason": "stop"}]],
    ),
    ("empty chunk dropped", stream_chunk({}), False, []),
    (
        "tool call opening",
        stream_chunk({"content": "", **TOOL_START}),
        False,
        [
            [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "t1",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": ""},
                            }
                        ]
                    },
                    "finish_reason": None,
                }
            ]
        ],
    ),
    (
        "tool call piece",
        stream_chunk({"content": "", **TOOL_PIECE}),
        False,
        [
            [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"q'}}]},
                    "finish_reason": None,
                }
            ]
        ],
    ),
    ("usage requested: own chunk", stream_chunk({}, usage=USAGE), True, [[]]),
    ("usage not requested: dropped", stream_chunk({}, usage=USAGE), False, []),
]


@pytest.mark.parametrize(
    ("chunk", "include_usage", "choices"),
    [c[1:] for c in CHUNK_CASES],
    ids=[c[0] for c in CHUNK_CASES],
)
def test_chunk_to_openai(chunk: Any, include_usage: bool, choices: list[Any]) -> None:
    out = chunk_to_openai(chunk, "anthropic", include_usage)
    assert [c["choices"] for c in out] == choices
    for c in out:
        assert (c["id"], c["object"], c["created"], c["model"]) == (
            "c1",
            "chat.completion.chunk",
            7,
            "m",
        )
    if include_usage and out:
        assert out[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_completion_to_openai_with_tool_call() -> None:
    response = ModelResponse(
        id="r1",
        created=9,
        model="anthropic/claude-x",
        usage=USAGE,
        choices=[
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": "{}"},
                        }
                    ],
                },
            }
        ],
    )
    data = completion_to_openai(response, "anthropic")
    assert data["model"] == "claude-x" and data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        ],
    }
    assert data["usage"]["total_tokens"] == 7
    orjson.dumps(data)  # plain JSON types only


def test_embedding_to_openai() -> None:
    response = EmbeddingResponse(
        model="cohere/embed-v3",
        usage=USAGE,
        data=[{"object": "embedding", "index": 0, "embedding": [0.5]}],
    )
    data = embedding_to_openai(response, "cohere")
    assert data == {
        "object": "list",
        "model": "embed-v3",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
        "usage": {"prompt_tokens": 3, "total_tokens": 7},
    }


def test_openai_only_gateways_never_import_litellm() -> None:
    code = (
        "import sys; from gateway.providers import registry, openai_compat; "
        "assert 'litellm' not in sys.modules, 'litellm imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


TAP_CASES = [
    (
        "anthropic, complete",
        [b'{"type":"message_start"}', b'{"type":"ping"}', b'{"type":"message_stop"}'],
        "message_stop",
        True,
    ),
    (
        "anthropic, no message_stop",
        [b'{"type":"message_start"}', b'{"type":"message_delta"}'],
        "message_stop",
        False,
    ),
    (
        "cohere, complete",
        [b'{"type":"message-start"}', b'{"type":"message-end"}'],
        "message-end",
        True,
    ),
    ("no terminal protocol", [b'{"candidates":[]}', b"[DONE]", b'{"type":["odd"]}'], None, False),
]


@pytest.mark.parametrize(
    ("payloads", "expected", "terminal"), [c[1:] for c in TAP_CASES], ids=[c[0] for c in TAP_CASES]
)
def test_tap_tracks_terminal_events(
    payloads: list[bytes], expected: str | None, terminal: bool
) -> None:
    tap = _Tap(timeout={})
    tap.check(payloads)
    assert (tap.expected_terminal, tap.terminal, tap.malformed) == (expected, terminal, None)


@pytest.mark.parametrize("payload", [b'{"type": "content_block_delta", "ind', b"[1, 2]", b"oops"])
def test_tap_stops_at_a_malformed_event(payload: bytes) -> None:
    tap = _Tap(timeout={})
    with pytest.raises(_MalformedEvent):
        tap.check([b'{"type":"message_start"}', payload, b'{"type":"message_stop"}'])
    assert tap.malformed == payload and not tap.terminal


# --- translation without the tap (litellm did not use our client) -------------------


def raised(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def status_error(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://vendor/v1/messages")
    response = httpx.Response(
        code,
        headers={"retry-after": "4"},
        request=request,
        content=b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    )
    return httpx.HTTPStatusError("boom", request=request, response=response)


TRANSLATE_CASES = [
    (
        "timeout",
        lambda: litellm.Timeout("slow", model="m", llm_provider="anthropic"),
        False,
        UpstreamTimeout,
    ),
    (
        "529 behind a 500",
        lambda: raised(
            litellm.InternalServerError("overloaded", llm_provider="anthropic", model="m"),
            status_error(529),
        ),
        False,
        UpstreamStatusError,
    ),
    (
        "local bad request",
        lambda: litellm.BadRequestError("bad", model="m", llm_provider="anthropic"),
        False,
        UpstreamStatusError,
    ),
    (
        "connection",
        lambda: raised(
            litellm.APIConnectionError("down", llm_provider="anthropic", model="m"),
            httpx.ConnectError("refused"),
        ),
        False,
        UpstreamConnectError,
    ),
    (
        "mid-stream",
        lambda: litellm.APIConnectionError("gone", llm_provider="a", model="m"),
        True,
        UpstreamStreamCut,
    ),
    (
        "body not json",
        lambda: raised(
            litellm.APIConnectionError("bad", llm_provider="a", model="m"),
            json.JSONDecodeError("Expecting value", "{oops", 1),
        ),
        False,
        UpstreamProtocolError,
    ),
    (
        "unknown failure",
        lambda: raised(RuntimeError("x"), ValueError("y")),
        False,
        UpstreamProtocolError,
    ),
]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = create_session()
    yield s
    await s.close()


def adapter_for(url: str, session: aiohttp.ClientSession, **extra: Any) -> LiteLLMAdapter:
    provider = ProviderConfig(kind="anthropic", base_url=url, api_key=SecretStr(KEY), **extra)
    return LiteLLMAdapter("claude", provider, session)


@pytest.mark.parametrize(
    ("make", "in_stream", "expected"),
    [c[1:] for c in TRANSLATE_CASES],
    ids=[c[0] for c in TRANSLATE_CASES],
)
async def test_translate_from_litellm_alone(
    session: aiohttp.ClientSession,
    make: Callable[[], BaseException],
    in_stream: bool,
    expected: type[Exception],
) -> None:
    adapter = adapter_for("http://127.0.0.1:9", session)
    tap = _Tap(timeout={})
    error = adapter.translate(make(), tap, in_stream=in_stream, phase="first_token")
    assert type(error) is expected
    if isinstance(error, UpstreamStatusError) and error.status == 529:
        assert error.headers["retry-after"] == "4" and error.vendor_code == "overloaded_error"


# --- against a fake Anthropic vendor --------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Vendor:
    def __init__(self) -> None:
        self.handler: Handler = self.answer
        self.seen: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.disconnected = asyncio.Event()
        self.url = ""

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((dict(request.headers), await request.json()))
        try:
            return await self.handler(request)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise

    async def answer(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(MESSAGE)


@pytest.fixture
async def vendor() -> AsyncIterator[Vendor]:
    fake = Vendor()
    app = web.Application()
    app.router.add_post("/v1/messages", fake.dispatch)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield fake
    await runner.cleanup()


def req(timeout: float = 3.0, **body: Any) -> UpstreamRequest:
    return UpstreamRequest(
        body={
            "model": "claude-x",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 50,
            **body,
        },
        endpoint="chat",
        connect_timeout=timeout,
        first_token_timeout=timeout,
        idle_timeout=timeout,
        extra_headers={"x-trace": "t1"},
    )


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


OPENING = [
    sse(
        "message_start",
        {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
    ),
    sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    ),
]


async def test_params_headers_and_model(vendor: Vendor, session: aiohttp.ClientSession) -> None:
    adapter = adapter_for(vendor.url, session, headers={"x-tenant": "t-1"})
    result = await adapter.complete(req(temperature=0.2, stop=["END"], top_p=0.9))
    headers, body = vendor.seen[-1]
    assert len(vendor.seen) == 1
    assert body["model"] == "claude-x"
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert headers["x-api-key"] == KEY
    assert headers["x-tenant"] == "t-1" and headers["x-trace"] == "t1"
    assert result.data["model"] == "claude-real"
    assert result.data["choices"][0]["message"]["content"] == "Hello"
    assert orjson.loads(result.raw) == result.data


async def test_overloaded_keeps_status_headers_and_hides_key(
    vendor: Vendor, session: aiohttp.ClientSession
) -> None:
    async def overloaded(request: web.Request) -> web.Response:
        error = {
            "type": "error",
            "error": {"type": "overloaded_error", "message": f"Overloaded (key {KEY})"},
        }
        return web.json_response(
            error,
            status=529,
            headers={"retry-after": "9", "anthropic-ratelimit-requests-remaining": "0"},
        )

    vendor.handler = overloaded
    with pytest.raises(UpstreamStatusError) as info:
        await adapter_for(vendor.url, session).complete(req())
    err = info.value
    assert err.status == 529 and err.vendor_code == "overloaded_error"
    assert err.headers["retry-after"] == "9"
    assert err.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert KEY not in err.message and "Overloaded" in err.message
    assert len(vendor.seen) == 1


async def test_unusable_answer(vendor: Vendor, session: aiohttp.ClientSession) -> None:
    async def odd(request: web.Request) -> web.Response:
        return web.json_response({"unexpected": True})

    vendor.handler = odd
    with pytest.raises(UpstreamProtocolError):
        await adapter_for(vendor.url, session).complete(req())


async def test_error_event_mid_stream_is_a_cut(
    vendor: Vendor, session: aiohttp.ClientSession
) -> None:
    async def failing(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        await response.write(b"".join(OPENING) + sse("error", error))
        return response

    vendor.handler = failing
    stream = await adapter_for(vendor.url, session).stream(req())
    with pytest.raises(UpstreamStreamCut):
        async for _ in stream:
            pass


async def test_aclose_drops_the_vendor_connection(
    vendor: Vendor, session: aiohttp.ClientSession
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"".join(OPENING))
        for _ in range(200):
            await asyncio.sleep(0.02)
            await response.write(sse("ping", {"type": "ping"}))
        return response

    vendor.handler = slow
    stream = await adapter_for(vendor.url, session).stream(req())
    first = await stream.__aiter__().__anext__()
    assert first.data is not None
    await stream.aclose()
    await stream.aclose()
    await asyncio.wait_for(vendor.disconnected.wait(), 2)


async def test_connect_timeout(session: aiohttp.ClientSession) -> None:
    with port_that_never_accepts() as port:
        request = UpstreamRequest(
            body=req().body,
            endpoint="chat",
            connect_timeout=0.2,
            first_token_timeout=2,
            idle_timeout=2,
        )
        with pytest.raises(UpstreamTimeout) as info:
            await adapter_for(f"http://127.0.0.1:{port}", session).complete(request)
    assert info.value.phase == "connect"
