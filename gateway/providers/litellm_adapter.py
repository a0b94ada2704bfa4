"""Adapter for vendors that do not speak the OpenAI API (Anthropic, Bedrock, Vertex, …).

litellm is only the translator here: `acompletion` / `aembedding` with retries off, no
Router, no callbacks. Its HTTP goes through a tap transport on the caller's shared aiohttp
session: the tap bounds the connect phase, records the vendor's real status, headers and
error body (litellm reports a 529 as 500), and checks every SSE event of a stream, because
litellm skips malformed events and ignores a missing terminal event (`message_stop`).

    tap saw a malformed SSE event, 2xx body unusable   -> UpstreamProtocolError
    vendor status not 2xx                              -> UpstreamStatusError (the real status)
    timeout (ours or litellm's)                        -> UpstreamTimeout(connect|first_token|idle)
    any other failure once the stream is open          -> UpstreamStreamCut
    no response headers (refused, reset, DNS, TLS)     -> UpstreamConnectError
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import orjson

from gateway.config import ProviderConfig
from gateway.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamStreamCut,
    UpstreamTimeout,
    redact,
)
from gateway.providers.base import (
    StreamEvent,
    UpstreamRequest,
    UpstreamResponse,
    asking_usage,
    wants_usage,
)
from gateway.providers.litellm_convert import (
    chunk_to_openai,
    completion_to_openai,
    embedding_to_openai,
)
from gateway.providers.openai_compat import ERROR_BODY_LIMIT, provider_secrets, vendor_error
from gateway.providers.sse import SSEParser

_DONE_EVENT = StreamEvent(raw=b"data: [DONE]\n\n", data=None)
_BACKSTOP_MARGIN = 1.0  # litellm's own read timeout, behind our precise bounds
# A stream that opened with the first event must end with the second to be complete.
_TERMINAL_EVENTS = {"message_start": "message_stop", "message-start": "message-end"}
_VENDOR_CODES = {
    "ContextWindowExceededError": "context_length_exceeded",
    "ContentPolicyViolationError": "content_policy_violation",
}
_TIMEOUTS = (httpx.TimeoutException, TimeoutError)
_CONNECT_TIMEOUTS = (httpx.ConnectTimeout, aiohttp.ConnectionTimeoutError)
_CONNECTION_ERRORS = (httpx.TransportError, aiohttp.ClientError, OSError)


def _load_litellm() -> tuple[Any, Any, Any]:
    """Import litellm on first use (slow); stop it fetching config files from GitHub."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    litellm: Any = importlib.import_module("litellm")
    litellm.suppress_debug_info = True  # otherwise every error prints a banner to stdout
    handler = importlib.import_module("litellm.llms.custom_httpx.http_handler").AsyncHTTPHandler
    transport = importlib.import_module(
        "litellm.llms.custom_httpx.aiohttp_transport"
    ).LiteLLMAiohttpTransport
    return litellm, handler, transport


@dataclass(slots=True)
class _Tap:
    """What one call's HTTP exchange looked like, as seen below litellm."""

    timeout: dict[str, float]
    sent: int = 0
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error_body: bytes = b""
    expected_terminal: str | None = None
    terminal: bool = False
    malformed: bytes | None = None
    stream: httpx.AsyncByteStream | None = None
    failure: Exception | None = None  # why the request got no response

    def check(self, payloads: list[bytes]) -> None:
        """Every SSE event must be a JSON object; note the stream's terminal event."""
        for payload in payloads:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict) and payload != b"[DONE]":
                self.malformed = payload
                raise _MalformedEvent(payload[:200].decode("utf-8", "replace"))
            kind = str(data.get("type")) if isinstance(data, dict) else ""
            if kind in _TERMINAL_EVENTS:
                self.expected_terminal = _TERMINAL_EVENTS[kind]
            elif kind == self.expected_terminal:
                self.terminal = True


class _MalformedEvent(Exception):
    """Raised inside litellm's read loop to stop it at a malformed SSE event."""


class _TapTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, current: ContextVar[_Tap | None]):
        self._inner = inner
        self._current = current

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        tap = self._current.get()
        if tap is None:
            return await self._inner.handle_async_request(request)
        if tap.sent:
            # litellm's HTTP handler resends after a connection error; retries are ours
            raise httpx.ConnectError(f"retry suppressed after: {tap.failure!r}", request=request)
        tap.sent += 1
        request.extensions["timeout"] = tap.timeout
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as exc:
            tap.failure = exc
            raise
        tap.status = response.status_code
        tap.headers = {k.lower(): v for k, v in response.headers.items()}
        inner = response.stream
        if not isinstance(inner, httpx.AsyncByteStream):
            return response
        if not 200 <= response.status_code < 300:
            response.stream = _TapStream(inner, tap, sse=False)
        elif response.headers.get("content-type", "").startswith("text/event-stream") and (
            "content-encoding" not in response.headers
        ):
            response.stream = tap.stream = _TapStream(inner, tap, sse=True)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TapStream(httpx.AsyncByteStream):
    """Passes the body through unchanged: keeps an error body, or checks SSE events."""

    def __init__(self, inner: httpx.AsyncByteStream, tap: _Tap, *, sse: bool) -> None:
        self._inner, self._tap = inner, tap
        self._parser = SSEParser() if sse else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        tap, parser = self._tap, self._parser
        async for chunk in self._inner:
            if parser is not None:
                tap.check(parser.feed(chunk))
            elif len(tap.error_body) < ERROR_BODY_LIMIT:
                tap.error_body = (tap.error_body + chunk)[:ERROR_BODY_LIMIT]
            yield chunk
        if parser is not None:
            tap.check(parser.finish())

    async def aclose(self) -> None:
        await self._inner.aclose()


class LiteLLMAdapter:
    """One provider reached through litellm's translation (retries off)."""

    def __init__(self, name: str, provider: ProviderConfig, session: aiohttp.ClientSession):
        self.name = name
        self._litellm, handler_class, transport_class = _load_litellm()
        self.kind = provider.kind
        self._api_base = provider.base_url
        self._api_key = provider.api_key.get_secret_value() if provider.api_key else None
        self._headers = dict(provider.headers)
        self._secrets = provider_secrets(provider)
        self.stream_usage = provider.asks_stream_usage
        self._current: ContextVar[_Tap | None] = ContextVar(f"tap:{name}", default=None)
        inner = transport_class(client=session, owns_session=False)
        self._client = handler_class(transport=_TapTransport(inner, self._current))
        self._warm_up()

    async def complete(self, request: UpstreamRequest) -> UpstreamResponse:
        deadline = asyncio.get_running_loop().time() + request.first_token_timeout
        result, tap = await self._open(request, deadline, stream=False)
        convert = embedding_to_openai if request.endpoint == "embeddings" else completion_to_openai
        try:
            data = convert(result, self.kind)
        except (AttributeError, TypeError, ValueError) as exc:
            raise UpstreamProtocolError(f"{self.name}: unusable answer: {exc}") from exc
        return UpstreamResponse(raw=orjson.dumps(data), data=data, headers=tap.headers)

    async def stream(self, request: UpstreamRequest) -> LiteLLMStream:
        deadline = asyncio.get_running_loop().time() + request.first_token_timeout
        wrapper, tap = await self._open(request, deadline, stream=True)
        return LiteLLMStream(self, wrapper, tap, deadline, request)

    async def aclose(self) -> None:
        """The HTTP session belongs to the caller; nothing else is held."""

    def _warm_up(self) -> None:
        # litellm's first call imports dozens of modules (~0.4 s); a mock call, which sends
        # nothing, pays that now rather than inside the first request's timeout.
        for stream in (False, True):
            with contextlib.suppress(Exception):
                self._litellm.completion(
                    model=f"{self.kind}/warm-up",
                    messages=[{"role": "user", "content": "hi"}],
                    mock_response="ok",
                    stream=stream,
                    num_retries=0,
                )

    async def _open(
        self, request: UpstreamRequest, deadline: float, *, stream: bool
    ) -> tuple[Any, _Tap]:
        """One litellm call (up to the stream's headers), observed by its own tap."""
        tap = _new_tap(request)
        token = self._current.set(tap)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._call(request, stream=stream), tap
        except TimeoutError as exc:
            raise _timeout(self.name, "first_token", request.first_token_timeout) from exc
        except Exception as exc:
            raise self.translate(exc, tap, in_stream=False, phase="first_token") from exc
        finally:
            self._current.reset(token)

    async def _call(self, request: UpstreamRequest, *, stream: bool) -> Any:
        body = request.body
        if stream and self.stream_usage:
            body = asking_usage(body)  # litellm takes it itself; no vendor is sent the field
        params = {k: v for k, v in body.items() if k not in ("model", "stream", "stream_options")}
        if stream and "stream_options" in body:
            params["stream_options"] = body["stream_options"]
        headers = {**self._headers, **request.extra_headers}
        backstop = max(request.first_token_timeout, request.idle_timeout) + _BACKSTOP_MARGIN
        common = {
            "model": f"{self.kind}/{body['model']}",
            "api_base": self._api_base,
            "api_key": self._api_key,
            "timeout": backstop,
            "num_retries": 0,
            "max_retries": 0,
            "client": self._client,
            "extra_headers": headers or None,
        }
        if request.endpoint == "embeddings":
            return await self._litellm.aembedding(**params, **common)
        return await self._litellm.acompletion(
            **params,
            **common,
            stream=stream,
            drop_params=True,  # a param this vendor lacks must not block failover to it
            _skip_mcp_handler=True,  # with tools, litellm otherwise imports its MCP proxy
        )

    def translate(
        self, exc: BaseException, tap: _Tap, *, in_stream: bool, phase: str
    ) -> UpstreamError:
        """One litellm failure as our exception (see the module docstring)."""
        chain = list(_chain(exc))
        cause = exc if tap.failure is None or tap.status is not None else tap.failure
        message = redact(f"{self.name}: {_describe(cause)}", self._secrets)
        if tap.malformed is not None:
            return UpstreamProtocolError(
                f"{self.name}: malformed stream event", body=tap.malformed[:512]
            )
        status, headers, body = _vendor_reply(tap, chain)
        if status is not None and not 200 <= status < 300:
            text, code = vendor_error(body) if body else ("", None)
            code = _VENDOR_CODES.get(type(exc).__name__, code)
            text = redact(f"{self.name}: HTTP {status}: {text}", self._secrets) if text else message
            return UpstreamStatusError(
                text, status=status, headers=headers, body=body, vendor_code=code
            )
        if any(isinstance(e, _TIMEOUTS) or type(e).__name__ == "Timeout" for e in chain):
            if any(isinstance(e, _CONNECT_TIMEOUTS) for e in chain):
                phase = "connect"
            return UpstreamTimeout(f"{message} ({phase})", phase=phase)
        if in_stream:
            return UpstreamStreamCut(message)
        if status is not None or any(isinstance(e, json.JSONDecodeError) for e in chain):
            return UpstreamProtocolError(message)
        if tap.sent or any(isinstance(e, _CONNECTION_ERRORS) for e in chain):
            return UpstreamConnectError(message)
        local = getattr(exc, "status_code", None)  # litellm refused before sending anything
        if isinstance(local, int) and 400 <= local < 600:
            return UpstreamStatusError(message, status=local)
        return UpstreamProtocolError(message)


class LiteLLMStream:
    """litellm's chunks as OpenAI `chat.completion.chunk` events."""

    def __init__(
        self,
        adapter: LiteLLMAdapter,
        wrapper: Any,
        tap: _Tap,
        deadline: float,
        request: UpstreamRequest,
    ) -> None:
        self.headers: Mapping[str, str] = tap.headers
        self._adapter, self._wrapper, self._tap, self._deadline = adapter, wrapper, tap, deadline
        self._first_token, self._idle = request.first_token_timeout, request.idle_timeout
        # the relay drops the usage chunk for a client that did not ask
        self._include_usage = wants_usage(request.body) or adapter.stream_usage
        self._events: deque[StreamEvent] = deque()
        self._started = False
        self._finished = False  # saw a finish_reason
        self._exhausted = False  # litellm's stream ended
        self._closed = False

    def __aiter__(self) -> LiteLLMStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._events:
            return self._events.popleft()
        if self._closed or self._exhausted:
            await self.aclose()
            raise StopAsyncIteration
        if self._started:
            phase, seconds = "idle", self._idle
            self._deadline = asyncio.get_running_loop().time() + seconds
        else:
            phase, seconds = "first_token", self._first_token
        try:
            async with asyncio.timeout_at(self._deadline):
                await self._read_events()
        except TimeoutError as exc:
            await self.aclose()
            raise _timeout(self._adapter.name, phase, seconds) from exc
        except Exception as exc:
            await self.aclose()
            raise self._adapter.translate(exc, self._tap, in_stream=True, phase=phase) from exc
        except BaseException:
            await self.aclose()
            raise
        if not self._events:
            await self.aclose()
            raise StopAsyncIteration
        self._started = True
        return self._events.popleft()

    async def _read_events(self) -> None:
        while not self._events:
            try:
                chunk = await self._wrapper.__anext__()
            except StopAsyncIteration:
                self._exhausted = True
                if self._tap.malformed is not None:
                    raise _MalformedEvent("stream ended after a malformed event") from None
                # complete: the vendor's terminal event if it has one, else a finish_reason
                if self._tap.terminal if self._tap.expected_terminal else self._finished:
                    self._events.append(_DONE_EVENT)
                return
            for data in chunk_to_openai(chunk, self._adapter.kind, self._include_usage):
                if any(c.get("finish_reason") for c in data["choices"]):
                    self._finished = True
                self._events.append(StreamEvent(b"data: " + orjson.dumps(data) + b"\n\n", data))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        stream, self._tap.stream = self._tap.stream, None
        if stream is not None:
            await stream.aclose()  # drops the vendor connection now
        with contextlib.suppress(Exception):  # best effort: the socket is already closed
            await self._wrapper.aclose()


def _new_tap(request: UpstreamRequest) -> _Tap:
    backstop = max(request.first_token_timeout, request.idle_timeout) + _BACKSTOP_MARGIN
    timeouts = {"connect": request.connect_timeout, "read": backstop}
    return _Tap(timeout={**timeouts, "write": backstop, "pool": backstop})


def _timeout(name: str, phase: str, seconds: float) -> UpstreamTimeout:
    return UpstreamTimeout(f"{name}: no {phase} within {seconds:g}s", phase=phase)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    for _ in range(16):  # bounded: a chain can loop
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def _describe(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    return text.removeprefix("litellm.")[:1000]


def _vendor_reply(
    tap: _Tap, chain: list[BaseException]
) -> tuple[int | None, Mapping[str, str], bytes]:
    """The vendor's status, headers and error body: from the tap, else from litellm's chain."""
    if tap.status is not None:
        return tap.status, tap.headers, tap.error_body
    for exc in chain:
        if isinstance(exc, httpx.HTTPStatusError):
            response = exc.response
            try:
                body = response.content[:ERROR_BODY_LIMIT]
            except httpx.ResponseNotRead:
                body = b""
            return response.status_code, dict(response.headers), body
    headers = getattr(chain[0], "litellm_response_headers", None)
    return None, dict(headers or {}), b""
