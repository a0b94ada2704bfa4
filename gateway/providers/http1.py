"""A lean HTTP/1.1 client for the pass-through adapter: keep-alive connections to one origin.

aiohttp's client costs about 110 us of CPU per request on one core of the benchmark
machine (cookie jar, multidict merges, payload registry, tracing hooks, redirect loop)
where the hot path needs one write and a parser. This client does only what
`openai_compat` needs: send a prepared request head and body, parse the answer with
httptools (the C parser uvicorn uses), read the body whole or piece by piece (by
Content-Length, chunked, or until close; gzip/deflate undone), and reuse connections.

    HTTPError
    ├── ConnectFailed      the TCP or TLS connection could not be made (`__cause__` says why)
    ├── ConnectTimeout     ... not within the connect timeout
    ├── Disconnected       the connection ended before the response headers
    ├── InvalidResponse    not HTTP, or a body that cannot be decoded
    └── BodyCut            the connection ended inside the response body

It never retries: a request is written once, on one connection.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from typing import cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

KEEPALIVE_SECONDS = 30.0  # an idle connection is closed after this long
_HIGH_WATER = 256 * 1024  # stop reading from the socket while this much body is unread
_LOW_WATER = 64 * 1024


class HTTPError(Exception):
    pass


class ConnectFailed(HTTPError):
    pass


class ConnectTimeout(HTTPError):
    pass


class Disconnected(HTTPError):
    pass


class InvalidResponse(HTTPError):
    pass


class BodyCut(HTTPError):
    pass


def head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    """A request line and header block, without the blank line that ends it."""
    return f"{method} {target} HTTP/1.1\r\n".encode() + header_lines(headers)


def header_lines(headers: list[tuple[str, str]]) -> bytes:
    """`name: value` lines. Raises ValueError for a header that could split the request."""
    lines = []
    for name, value in headers:
        if not name or any(c in name for c in " \t\r\n:") or "\r" in value or "\n" in value:
            raise ValueError(f"invalid HTTP header {name!r}: names are tokens, values one line")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()


class Origin:
    """Keep-alive connections to one scheme://host:port; hands out one per request."""

    def __init__(
        self, host: str, port: int, tls: ssl.SSLContext | None, keepalive: float = KEEPALIVE_SECONDS
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.keepalive = keepalive
        self._idle: list[_Connection] = []
        self._closed = False

    async def request(self, data: bytes, connect_timeout: float) -> Response:
        """Write `data` (a whole request) and wait for the response headers."""
        connection = self._take_idle()
        if connection is None:
            connection = await self._connect(connect_timeout)
        response = connection.send(data)
        try:
            await response.headers_received()
        except BaseException:
            response.close()
            raise
        return response

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely stale
            if connection.reusable():
                connection.stop_expiry()
                return connection
        return None

    async def _connect(self, connect_seconds: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_seconds):
                transport, connection = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls is not None else None,
                )
        except TimeoutError as exc:  # an OSError too: caught first
            raise ConnectTimeout(f"no connection within {connect_seconds:g}s") from exc
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        connection.connection_made(transport)  # uvloop may call it only on the next loop turn
        return connection

    def give_back(self, connection: _Connection) -> None:
        if self._closed or not connection.reusable():
            connection.close()
            return
        connection.expire_after(self.keepalive)
        self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        """Close idle connections now, and each busy one when its response is done."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: writes requests, feeds answers to its `Response`."""

    def __init__(self, origin: Origin) -> None:
        self._origin = origin
        self._transport: asyncio.Transport | None = None
        self._response: Response | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)  # may run twice: Origin._connect

    def send(self, data: bytes) -> Response:
        assert self._transport is not None
        response = self._response = Response(self)
        self._transport.write(data)
        return response

    def data_received(self, data: bytes) -> None:
        if self._response is None:
            self.close()  # bytes nobody asked for: the connection cannot be trusted
        elif not self._response.feed(data):
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.stop_expiry()
        self._origin.forget(self)
        response, self._response = self._response, None
        if response is not None and not response.complete:
            response.connection_ended(exc)

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.lost:
            self._transport.resume_reading()

    def reusable(self) -> bool:
        return not self.lost and self._transport is not None and not self._transport.is_closing()

    def finished(self, response: Response, keep_alive: bool) -> None:
        """The response was read to its end: back to the pool, or closed."""
        if self._response is response:
            self._response = None
        if keep_alive:
            self._origin.give_back(self)
        else:
            self.close()

    def expire_after(self, seconds: float) -> None:
        self._expiry = asyncio.get_running_loop().call_later(seconds, self.close)

    def stop_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


class Response:
    """Status and headers once `headers_received` returns; the body with `read` or
    `readany`. Call `release` after reading to the end, `close` to give up on it."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        # parser -> our bound methods -> us -> parser is a reference cycle: `release` and
        # `close` break it, so a finished response is freed at once, not by the collector
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = ""
        self._raw_headers: list[tuple[str, str]] = []
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._decoder: zlib._Decompress | None = None
        self._has_headers = False
        self.complete = False  # the whole body arrived
        self._keep_alive = False
        self._error: HTTPError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._released = False
        self._grace: asyncio.TimerHandle | None = None  # see release_when_done

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._has_headers = True
        self.headers = CIMultiDictProxy(CIMultiDict(self._raw_headers))
        self.status = self._live_parser().get_status_code()
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding != "identity":
            self.fail(InvalidResponse(f"unsupported content-encoding {encoding!r}"))

    def on_body(self, body: bytes) -> None:
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body)
            except zlib.error as exc:
                self.fail(InvalidResponse(f"cannot decode the body: {exc}"))
                return
        if body:
            self._chunks.append(body)
            self._buffered += len(body)

    def on_message_complete(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._chunks.append(tail)
        self._keep_alive = self._live_parser().should_keep_alive()
        self.complete = True
        if self._grace is not None:
            self._grace.cancel()
            self.release()

    # connection events
    def feed(self, data: bytes) -> bool:
        """Parse bytes from the connection; False when they are not HTTP."""
        parser = self._parser
        if parser is None:
            return False  # released: nothing more is read on its behalf
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(InvalidResponse(f"invalid HTTP response: {exc}"))
            return False
        if self._buffered > _HIGH_WATER and not self._paused and not self._released:
            self._paused = True
            self._connection.pause_reading()
        self._wake()
        return True

    def _live_parser(self) -> httptools.HttpResponseParser:
        assert self._parser is not None, "parser callbacks run only while it is alive"
        return self._parser

    def fail(self, error: HTTPError) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def connection_ended(self, exc: Exception | None) -> None:
        why = f" ({type(exc).__name__})" if exc is not None else ""
        if self._has_headers and exc is None and self._ends_at_close():
            self.complete = True  # a body without length or chunks ends with the connection
            self._wake()
        elif not self._has_headers:
            self.fail(Disconnected(f"the server closed the connection before answering{why}"))
        else:
            self.fail(BodyCut(f"the connection ended inside the response body{why}"))

    def _ends_at_close(self) -> bool:
        headers = self.headers
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        return "content-length" not in headers and not chunked and self.status not in (204, 304)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # reading
    async def headers_received(self) -> None:
        while not self._has_headers:
            if self._error is not None:
                raise self._error
            await self._wait()

    async def readany(self) -> bytes:
        """The next piece of the body as it arrived; b"" at its end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            await self._wait()
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _LOW_WATER:
            self._paused = False
            self._connection.resume_reading()
        return chunk

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool."""
        while not self.complete:
            if self._error is not None:
                raise self._error
            await self._wait()
            if self._paused:
                self._paused = False
                self._connection.resume_reading()
        if self._error is not None:
            raise self._error
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        self.release()
        return body

    def at_eof(self) -> bool:
        return self.complete and not self._chunks

    def release(self) -> None:
        """Done with the response: reuse the connection if the body was read to its end."""
        if self._released:
            return
        self._released = True
        self._parser = None
        done = self.complete and self._error is None
        self._connection.finished(self, keep_alive=done and self._keep_alive)

    def release_when_done(self, grace: float) -> None:
        """Done with the response, whose end is still on its way: reuse the connection once
        the body's end arrives, or close it if that takes longer than `grace` seconds."""
        if self._released or self._grace is not None:
            return
        if self.complete or self._error is not None:
            self.release()
            return
        self._grace = asyncio.get_running_loop().call_later(grace, self.close)

    def close(self) -> None:
        """Give up on the response: its connection is closed, not reused."""
        if self._grace is not None:
            self._grace.cancel()
        if self._released:
            return
        self._released = True
        self._parser = None
        self._connection.finished(self, keep_alive=False)
