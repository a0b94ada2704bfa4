"""Pass-through adapter for vendors that speak the OpenAI HTTP API (OpenAI, Azure, vLLM, …).

The hot path: the body is serialised once with orjson, bytes are relayed as received, and
each adapter keeps its own keep-alive connections (`http1.Origin`, a lean HTTP/1.1 client:
aiohttp's costs more CPU per request than the rest of the gateway's own work). Its
exceptions are translated here, at the edge:

    before headers   connect refused / DNS / TLS / reset   -> UpstreamConnectError
                     not an HTTP response                  -> UpstreamProtocolError
                     connect timeout                       -> UpstreamTimeout(connect)
                     headers (and body) too late           -> UpstreamTimeout(first_token)
    non-2xx status                                         -> UpstreamStatusError
    complete body    truncated / not JSON / wrong shape    -> UpstreamProtocolError
    stream           first event / next event too late     -> UpstreamTimeout(first_token|idle)
                     connection lost, vendor error event   -> UpstreamStreamCut
                     event not JSON                        -> UpstreamProtocolError
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
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
from gateway.providers.base import StreamEvent, UpstreamRequest, UpstreamResponse, asking_usage
from gateway.providers.http1 import (
    ConnectTimeout,
    HTTPError,
    InvalidResponse,
    Origin,
    Response,
    head,
    header_lines,
)
from gateway.providers.sse import SSEParser, encode_event

ERROR_BODY_LIMIT = 64 * 1024
_DONE_EVENT = StreamEvent(raw=b"data: [DONE]\n\n", data=None)
_DRAIN_TIMEOUT = 0.5  # after [DONE], how long to wait for the body's end to keep the connection
_PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings"}
_SECRET_HEADER_HINTS = ("key", "auth", "token", "secret")
USER_AGENT = "failover-gateway"


def create_session() -> aiohttp.ClientSession:
    """The pooled aiohttp session the gateway shares for everything but the pass-through
    hot path (litellm's adapter, health probes); call inside the running loop."""
    connector = aiohttp.TCPConnector(
        limit=0,  # no pool cap: concurrency is bounded by the gateway, not the pool
        limit_per_host=0,
        ttl_dns_cache=60,
        keepalive_timeout=30.0,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),  # each request brings its own bounds
        cookie_jar=aiohttp.DummyCookieJar(),  # vendor cookies must not leak across tenants
        auto_decompress=True,
    )


class OpenAICompatAdapter:
    """One provider reached over the OpenAI HTTP API, on keep-alive connections of its own."""

    def __init__(self, name: str, provider: ProviderConfig) -> None:
        base_url = provider.resolved_base_url
        if base_url is None:
            raise ValueError(f"provider '{name}': base_url is required for kind {provider.kind}")
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"provider '{name}': base_url must be an http(s) URL: {base_url}")
        tls = ssl.create_default_context() if url.scheme == "https" else None
        default_port = 443 if tls is not None else 80
        self.name = name
        self._origin = Origin(url.hostname, url.port or default_port, tls)
        self._host = url.netloc.rsplit("@", 1)[-1]  # the Host header: no credentials
        self._path = url.path
        self._azure = provider.kind == "azure"
        self._stream_usage = provider.asks_stream_usage
        self._api_version = provider.api_version
        key = provider.api_key.get_secret_value() if provider.api_key else ""
        self._secrets = provider_secrets(provider)
        headers = [
            ("Host", self._host),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Accept-Encoding", "gzip, deflate"),
            ("User-Agent", USER_AGENT),
        ]
        if key:
            headers.append(("api-key", key) if self._azure else ("Authorization", f"Bearer {key}"))
        headers += provider.headers.items()
        self._headers = headers
        self._heads: dict[tuple[str, str], bytes] = {}
        head("POST", "/", headers)  # a header that could split a request fails here, at start

    async def complete(self, request: UpstreamRequest) -> UpstreamResponse:
        body = request.body
        if body.get("stream"):
            body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        deadline = asyncio.get_running_loop().time() + request.first_token_timeout
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._open(request, body)
                try:
                    raw = await response.read()
                except HTTPError as exc:
                    response.close()
                    raise UpstreamProtocolError(
                        f"{self.name}: response body truncated ({exc})", status=response.status
                    ) from exc
                except BaseException:
                    response.close()  # timed out or cancelled: the connection is not reusable
                    raise
        except TimeoutError as exc:
            raise self._timeout("first_token", request.first_token_timeout) from exc
        return UpstreamResponse(
            raw=raw, data=self._parse_answer(raw, request.endpoint), headers=response.headers
        )

    async def stream(self, request: UpstreamRequest) -> OpenAIStream:
        body = request.body
        if body.get("stream") is not True:
            body = {**body, "stream": True}
        if self._stream_usage:
            body = asking_usage(body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.first_token_timeout
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._open(request, body)
        except TimeoutError as exc:
            raise self._timeout("first_token", request.first_token_timeout) from exc
        timeouts = (request.first_token_timeout, request.idle_timeout)
        return OpenAIStream(self.name, response, deadline, timeouts, self._secrets)

    async def aclose(self) -> None:
        self._origin.close()

    async def _open(self, request: UpstreamRequest, body: dict[str, Any]) -> Response:
        """Send the request; return a 2xx response whose headers are in, or raise."""
        data = orjson.dumps(body)
        prefix = self._head(request.endpoint, body)
        if request.extra_headers:
            prefix += header_lines(list(request.extra_headers.items()))
        message = b"%sContent-Length: %d\r\n\r\n%s" % (prefix, len(data), data)
        try:
            response = await self._origin.request(message, request.connect_timeout)
        except ConnectTimeout as exc:
            raise self._timeout("connect", request.connect_timeout) from exc
        except InvalidResponse as exc:
            raise UpstreamProtocolError(f"{self.name}: {exc}") from exc
        except HTTPError as exc:  # connect failed, or closed before answering
            detail = redact(str(exc), self._secrets) or "connection failed"
            raise UpstreamConnectError(f"{self.name}: {detail}") from exc
        if not 200 <= response.status < 300:
            raise await self._status_error(response)
        return response

    async def _status_error(self, response: Response) -> UpstreamStatusError:
        body = b""
        try:
            while len(body) < ERROR_BODY_LIMIT:
                chunk = await response.readany()
                if not chunk:
                    break
                body += chunk
        except HTTPError:
            pass  # the status says enough; keep what arrived
        finally:
            response.close()
        body = body[:ERROR_BODY_LIMIT]
        message, code = vendor_error(body)
        text = redact(message or response.reason or "", self._secrets)
        return UpstreamStatusError(
            f"{self.name}: HTTP {response.status}: {text}",
            status=response.status,
            headers=response.headers,
            body=body,
            vendor_code=code,
        )

    def _head(self, endpoint: str, body: dict[str, Any]) -> bytes:
        """The request line and fixed headers for an endpoint (and, on Azure, a model)."""
        model = str(body.get("model", "")) if self._azure else ""
        cached = self._heads.get((endpoint, model))
        if cached is None:
            path = _PATHS[endpoint]
            if self._azure:
                target = f"{self._path}/openai/deployments/{quote(model, safe='')}{path}"
                if self._api_version:
                    target += f"?api-version={quote(self._api_version, safe='')}"
            else:
                target = self._path + path
            cached = self._heads[(endpoint, model)] = head("POST", target, self._headers)
        return cached

    def _timeout(self, phase: str, seconds: float) -> UpstreamTimeout:
        return UpstreamTimeout(f"{self.name}: no {phase} within {seconds:g}s", phase=phase)

    def _parse_answer(self, raw: bytes, endpoint: str) -> dict[str, Any]:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _protocol(self.name, "response is not JSON", raw) from exc
        field = "choices" if endpoint == "chat" else "data"
        if not isinstance(data, dict) or not isinstance(data.get(field), list):
            raise _protocol(self.name, f"response has no '{field}' list", raw)
        return data


def provider_secrets(provider: ProviderConfig) -> list[str]:
    """What `redact` must remove from vendor text: the key and credential-like headers."""
    key = provider.api_key.get_secret_value() if provider.api_key else ""
    headers = [
        value
        for header, value in provider.headers.items()
        if any(hint in header.lower() for hint in _SECRET_HEADER_HINTS)
    ]
    return [key, *headers]


def vendor_error(body: bytes) -> tuple[str, str | None]:
    """The message and code of an OpenAI-style error body (lenient about other shapes)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace").strip(), None
    if not isinstance(data, dict):
        return str(data)[:500], None
    error = data.get("error", data)
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return str(error)[:500], None
    message = error.get("message") or error.get("detail") or ""
    code = error.get("code") or error.get("type")
    return str(message), None if code is None else str(code)


class OpenAIStream:
    """An OpenAI SSE stream read incrementally from one HTTP response."""

    __slots__ = (
        "_deadline",
        "_done",
        "_error",
        "_events",
        "_first_token",
        "_idle",
        "_name",
        "_parser",
        "_response",
        "_secrets",
        "_started",
        "headers",
    )

    def __init__(
        self,
        name: str,
        response: Response,
        deadline: float,
        timeouts: tuple[float, float],
        secrets: list[str],
    ) -> None:
        self.headers: Mapping[str, str] = response.headers
        self._name = name
        self._response: Response | None = response
        self._parser = SSEParser()
        self._events: deque[StreamEvent] = deque()
        self._error: UpstreamError | None = None  # raised once the events before it are out
        self._deadline = deadline
        self._first_token, self._idle = timeouts
        self._secrets = secrets
        self._started = False
        self._done = False

    def __aiter__(self) -> OpenAIStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._events:
            return self._events.popleft()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        response = self._response
        if response is None:
            raise StopAsyncIteration
        if self._done:
            await self._finish_after_done(response)
            raise StopAsyncIteration
        await self._read_events(response)
        if self._events:
            self._started = True
            return self._events.popleft()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._close()  # clean end of body without [DONE]
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._close()

    async def _read_events(self, response: Response) -> None:
        if self._started:
            phase, seconds = "idle", self._idle
            self._deadline = asyncio.get_running_loop().time() + seconds
        else:
            phase, seconds = "first_token", self._first_token
        try:
            async with asyncio.timeout_at(self._deadline):
                while not self._events and self._error is None:
                    chunk = await response.readany()
                    if not chunk:
                        self._add(self._parser.finish())
                        return
                    self._add(self._parser.feed(chunk))
        except TimeoutError as exc:
            self._close()
            raise UpstreamTimeout(
                f"{self._name}: no stream event within {seconds:g}s ({phase})", phase=phase
            ) from exc
        except HTTPError as exc:
            self._close()
            raise UpstreamStreamCut(f"{self._name}: stream broken ({exc})") from exc
        except BaseException:
            self._close()
            raise

    def _add(self, payloads: list[bytes]) -> None:
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            if payload == b"[DONE]":
                self._done = True
                self._events.append(_DONE_EVENT)
                return  # nothing after [DONE] is relayed
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict):
                self._fail(_protocol(self._name, "stream event is not a JSON object", payload))
                return
            if "error" in data and "choices" not in data:
                message, code = vendor_error(payload)
                self._fail(
                    UpstreamStreamCut(
                        f"{self._name}: error event: {redact(message, self._secrets)}",
                        body=payload[:ERROR_BODY_LIMIT],
                        vendor_code=code,
                    )
                )
                return
            self._events.append(StreamEvent(encode_event(payload), data, i < last))

    def _fail(self, error: UpstreamError) -> None:
        self._error = error
        self._close()

    async def _finish_after_done(self, response: Response) -> None:
        # Reading the body's end returns the connection to the pool for reuse.
        try:
            async with asyncio.timeout(min(self._idle, _DRAIN_TIMEOUT)):
                while await response.readany():
                    pass
        except (TimeoutError, HTTPError):
            pass
        self._close()

    def _close(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            if response.at_eof():
                response.release()
            elif self._done:  # the body's end is due right after [DONE]: reuse if it comes
                response.release_when_done(min(self._idle, _DRAIN_TIMEOUT))
            else:
                response.close()


def _protocol(name: str, what: str, payload: bytes) -> UpstreamError:
    return UpstreamProtocolError(f"{name}: {what}", body=payload[:512])
