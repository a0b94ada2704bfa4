"""Edge cases of the pass-through adapter against tiny loopback servers of our own."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

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
from gateway.providers.base import StreamEvent, UpstreamRequest
from gateway.providers.openai_compat import OpenAICompatAdapter
from tests.conftest import port_that_never_accepts

KEY = "sk-test-0123456789abcdef"
ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Upstream:
    """An aiohttp app whose one handler each test sets; records what it received."""

    def __init__(self) -> None:
        self.handler: Handler = self.answer
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.peers: set[Any] = set()
        self.disconnected = asyncio.Event()
        self.base_url = ""

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path_qs, dict(request.headers), await request.read()))
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        try:
            return await self.handler(request)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise

    async def answer(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(ANSWER, headers={"x-request-id": "r1"})

    @property
    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.seen[-1][2])
        return data


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", up.dispatch)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    up.base_url = f"http://127.0.0.1:{port}/v1"
    yield up
    await runner.cleanup()


def adapter_for(url: str, **extra: Any) -> OpenAICompatAdapter:
    provider = ProviderConfig(
        kind=extra.pop("kind", "openai"), base_url=url, api_key=SecretStr(KEY), **extra
    )
    return OpenAICompatAdapter("up", provider)


def req(endpoint: str = "chat", timeout: float = 2.0, **body: Any) -> UpstreamRequest:
    return UpstreamRequest(
        body={"model": "m", "messages": [{"role": "user", "content": "x"}], **body},
        endpoint=endpoint,
        connect_timeout=timeout,
        first_token_timeout=timeout,
        idle_timeout=timeout,
        extra_headers={"x-trace": "t1"},
    )


async def sse(request: web.Request, chunks: list[bytes], pause: float = 0.0) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
        await asyncio.sleep(pause)
    return response


async def collect(stream: Any) -> list[StreamEvent]:
    return [event async for event in stream]


# --- complete -------------------------------------------------------------------------


async def test_complete_relays_bytes_and_sends_headers(upstream: Upstream) -> None:
    adapter = adapter_for(upstream.base_url, headers={"OpenAI-Organization": "org"})
    result = await adapter.complete(req(stream=True, stream_options={"include_usage": True}))
    assert result.data == ANSWER and orjson.loads(result.raw) == ANSWER
    assert result.headers["x-request-id"] == "r1"
    path, headers, _ = upstream.seen[-1]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Organization"] == "org" and headers["x-trace"] == "t1"
    assert "stream" not in upstream.body and "stream_options" not in upstream.body


async def test_azure_url_and_key_header(upstream: Upstream) -> None:
    base = upstream.base_url.removesuffix("/v1")
    adapter = adapter_for(base, kind="azure", api_version="2024-06-01")
    await adapter.complete(req(model="gpt-4o-prod"))
    path, headers, _ = upstream.seen[-1]
    assert path == "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-06-01"
    assert headers["api-key"] == KEY and "Authorization" not in headers


async def test_no_key_sends_no_authorization(upstream: Upstream) -> None:
    adapter = OpenAICompatAdapter("up", ProviderConfig(kind="vllm", base_url=upstream.base_url))
    await adapter.complete(req())
    assert "Authorization" not in upstream.seen[-1][1]


async def test_embeddings(upstream: Upstream) -> None:
    async def embeddings(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"embedding": [0.1]}]})

    upstream.handler = embeddings
    result = await adapter_for(upstream.base_url).complete(req("embeddings"))
    assert result.data["data"][0]["embedding"] == [0.1]
    assert upstream.seen[-1][0] == "/v1/embeddings"


async def test_status_error_carries_vendor_details_without_the_key(upstream: Upstream) -> None:
    async def limited(request: web.Request) -> web.Response:
        error = {
            "error": {
                "message": f"Incorrect API key provided: {KEY}",
                "type": "invalid",
                "code": "invalid_api_key",
            }
        }
        return web.json_response(error, status=401, headers={"Retry-After": "3"})

    upstream.handler = limited
    with pytest.raises(UpstreamStatusError) as info:
        await adapter_for(upstream.base_url).complete(req())
    err = info.value
    assert err.status == 401 and err.vendor_code == "invalid_api_key"
    assert err.headers["retry-after"] == "3"
    assert KEY not in str(err) and KEY not in err.message and b"invalid_api_key" in err.body


async def test_status_error_with_plain_text_body(upstream: Upstream) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=502, text="Bad gateway " * 10_000)

    upstream.handler = broken
    with pytest.raises(UpstreamStatusError) as info:
        await adapter_for(upstream.base_url).complete(req())
    assert info.value.status == 502 and info.value.vendor_code is None
    assert len(info.value.body) == 64 * 1024 and "Bad gateway" in info.value.message


@pytest.mark.parametrize(
    ("endpoint", "payload"),
    [("chat", b"not json"), ("chat", b'{"id": "x"}'), ("chat", b"[1]"), ("embeddings", b"{}")],
)
async def test_malformed_answer(upstream: Upstream, endpoint: str, payload: bytes) -> None:
    async def malformed(request: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    upstream.handler = malformed
    with pytest.raises(UpstreamProtocolError):
        await adapter_for(upstream.base_url).complete(req(endpoint))


async def test_hang_is_a_first_token_timeout(upstream: Upstream) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")

    upstream.handler = hang
    with pytest.raises(UpstreamTimeout) as info:
        await adapter_for(upstream.base_url).complete(req(timeout=0.2))
    assert info.value.phase == "first_token"


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = adapter_for(f"http://127.0.0.1:{port}/v1")
    with pytest.raises(UpstreamConnectError):
        await adapter.complete(req())
    with pytest.raises(UpstreamConnectError):
        await adapter.stream(req())


async def test_connect_timeout() -> None:
    with port_that_never_accepts() as port:
        request = UpstreamRequest(
            body={"model": "m"},
            endpoint="chat",
            connect_timeout=0.2,
            first_token_timeout=2,
            idle_timeout=2,
        )
        with pytest.raises(UpstreamTimeout) as info:
            await adapter_for(f"http://127.0.0.1:{port}/v1").complete(request)
    assert info.value.phase == "connect"


# --- raw socket faults ----------------------------------------------------------------

RawScript = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[RawScript], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(script: RawScript) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            try:
                await script(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    yield start
    for server in servers:
        server.close()


def reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def test_reset_before_headers(raw_server: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reset(writer)

    adapter = adapter_for(await raw_server(script))
    with pytest.raises(UpstreamConnectError):
        await adapter.complete(req())
    with pytest.raises(UpstreamConnectError):
        await adapter.stream(req())


async def test_close_before_headers(raw_server: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return  # the fixture closes the connection

    with pytest.raises(UpstreamConnectError):
        await adapter_for(await raw_server(script)).complete(req())


async def test_truncated_body(raw_server: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: 500\r\n\r\n" + orjson.dumps(ANSWER)[:40]
        )
        await writer.drain()

    with pytest.raises(UpstreamProtocolError):
        await adapter_for(await raw_server(script)).complete(req())


async def test_invalid_http_response(raw_server: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    with pytest.raises(UpstreamProtocolError):
        await adapter_for(await raw_server(script)).complete(req())


async def test_stream_cut_mid_chunked_body(raw_server: Any) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        event = b'data: {"choices": []}\n\n'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(event):x}\r\n".encode() + event + b"\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        reset(writer)

    stream = await adapter_for(await raw_server(script)).stream(req())
    events = []
    with pytest.raises(UpstreamStreamCut):
        async for event in stream:
            events.append(event)
    assert len(events) == 1


# --- streaming ------------------------------------------------------------------------


def chunk(text: str) -> bytes:
    return b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})


async def test_stream_normalises_events(upstream: Upstream) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(
            request,
            [
                b": keep-alive\r\n\r\n",
                b"event: message\r\n" + chunk("Hel")[:10],
                chunk("Hel")[10:] + b"\r\n\r\n" + chunk("lo") + b"\r",
                b"\n\r\ndata: [DONE]\r\n\r\n",
                chunk("ignored after done") + b"\n\n",
            ],
        )

    upstream.handler = handler
    stream = await adapter_for(upstream.base_url).stream(req())
    assert stream.headers["Content-Type"] == "text/event-stream"
    events = await collect(stream)
    assert [e.raw for e in events] == [
        chunk("Hel") + b"\n\n",
        chunk("lo") + b"\n\n",
        b"data: [DONE]\n\n",
    ]
    assert events[0].data == {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}
    assert events[-1].is_done
    assert upstream.body["stream"] is True


async def test_stream_reuses_the_connection_after_done(upstream: Upstream) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(request, [chunk("a") + b"\n\n", b"data: [DONE]\n\n"])

    upstream.handler = handler
    adapter = adapter_for(upstream.base_url)
    for _ in range(3):
        assert len(await collect(await adapter.stream(req()))) == 2
    upstream.handler = upstream.answer
    await adapter.complete(req())
    assert len(upstream.peers) == 1


async def test_closing_after_done_keeps_the_connection(upstream: Upstream) -> None:
    # The relay stops at [DONE] and closes; the chunked body's end arrives a moment later.
    async def handler(request: web.Request) -> web.StreamResponse:
        response = await sse(request, [chunk("a") + b"\n\n", b"data: [DONE]\n\n"])
        await asyncio.sleep(0.05)
        return response

    upstream.handler = handler
    adapter = adapter_for(upstream.base_url)
    for _ in range(3):
        stream = await adapter.stream(req())
        assert (await stream.__anext__()).data is not None
        assert (await stream.__anext__()).is_done
        await stream.aclose()
        await asyncio.sleep(0.1)
    upstream.handler = upstream.answer
    await adapter.complete(req())
    assert len(upstream.peers) == 1


async def test_stream_status_error(upstream: Upstream) -> None:
    async def overloaded(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "busy", "type": "overloaded"}}, status=529)

    upstream.handler = overloaded
    with pytest.raises(UpstreamStatusError) as info:
        await adapter_for(upstream.base_url).stream(req())
    assert info.value.status == 529 and info.value.vendor_code == "overloaded"


async def test_stream_bad_json_after_good_events(upstream: Upstream) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(request, [chunk("a") + b"\n\ndata: {oops\n\n"])

    upstream.handler = handler
    stream = await adapter_for(upstream.base_url).stream(req())
    assert (await stream.__anext__()).data is not None
    with pytest.raises(UpstreamProtocolError):
        await stream.__anext__()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_stream_error_event_is_a_cut(upstream: Upstream) -> None:
    error = b'data: {"error": {"message": "server_error ' + KEY.encode() + b'", "code": "x"}}\n\n'

    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(request, [chunk("a") + b"\n\n", error])

    upstream.handler = handler
    stream = await adapter_for(upstream.base_url).stream(req())
    with pytest.raises(UpstreamStreamCut) as info:
        await collect(stream)
    assert info.value.vendor_code == "x" and KEY not in info.value.message


async def test_stream_clean_eof_without_done(upstream: Upstream) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(request, [chunk("a") + b"\n\n"])

    upstream.handler = handler
    events = await collect(await adapter_for(upstream.base_url).stream(req()))
    assert len(events) == 1 and not events[0].is_done


@pytest.mark.parametrize(("first", "phase"), [([], "first_token"), ([b"a"], "idle")])
async def test_stream_timeouts(upstream: Upstream, first: list[bytes], phase: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = await sse(request, [chunk(t.decode()) + b"\n\n" for t in first])
        await asyncio.sleep(10)
        return response

    upstream.handler = handler
    stream = await adapter_for(upstream.base_url).stream(req(timeout=0.2))
    with pytest.raises(UpstreamTimeout) as info:
        await collect(stream)
    assert info.value.phase == phase
    await asyncio.wait_for(upstream.disconnected.wait(), 1)


async def test_keep_alive_comments_do_not_reset_idle(upstream: Upstream) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(request, [chunk("a") + b"\n\n"] + [b": ping\n\n"] * 20, pause=0.05)

    upstream.handler = handler
    stream = await adapter_for(upstream.base_url).stream(req(timeout=0.3))
    with pytest.raises(UpstreamTimeout):
        await collect(stream)


async def test_aclose_cancels_upstream_and_is_idempotent(upstream: Upstream) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse(request, [chunk("a") + b"\n\n"] * 100, pause=0.02)

    upstream.handler = handler
    stream = await adapter_for(upstream.base_url).stream(req())
    await stream.__anext__()
    await stream.aclose()
    await stream.aclose()
    await asyncio.wait_for(upstream.disconnected.wait(), 1)
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
