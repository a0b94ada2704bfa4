"""The lean HTTP/1.1 client against scripted loopback servers: framing, decoding,
keep-alive reuse, flow control, TLS, and the errors it raises."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.providers.http1 import (
    BodyCut,
    ConnectFailed,
    ConnectTimeout,
    Disconnected,
    InvalidResponse,
    Origin,
    head,
    header_lines,
)
from tests.conftest import port_that_never_accepts

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
REQUEST = head("POST", "/v1/x", [("Host", "127.0.0.1")]) + b"Content-Length: 2\r\n\r\n{}"


class Server:
    """Answers each request on a connection with the next script; counts connections."""

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.scripts:
                try:
                    request = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                length = int(request.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.requests.append(request + await reader.readexactly(length))
                await self.scripts.pop(0)(reader, writer)
            await reader.read()  # until the client closes
        finally:
            self.closed.set()
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[tuple[Server, int]]]]:
    servers: list[asyncio.Server] = []

    async def start(scripts: list[Script], tls: ssl.SSLContext | None = None) -> tuple[Server, int]:
        state = Server(scripts)
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        return state, server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines = "".join(f"{h}\r\n" for h in headers)
        writer.write(f"HTTP/1.1 {status}\r\n{lines}\r\n".encode() + body)
        await writer.drain()

    return script


def sized(body: bytes, *headers: str, status: str = "200 OK") -> Script:
    return answer(body, f"Content-Length: {len(body)}", *headers, status=status)


def chunked(*pieces: bytes) -> Script:
    framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    return answer(framed, "Transfer-Encoding: chunked")


BODY = b'{"choices": []}' * 50


@pytest.mark.parametrize(
    "script",
    [
        sized(BODY),
        chunked(BODY[:100], BODY[100:]),
        sized(gzip.compress(BODY), "Content-Encoding: gzip"),
        sized(zlib.compress(BODY), "Content-Encoding: deflate"),
    ],
    ids=["content-length", "chunked", "gzip", "deflate"],
)
async def test_bodies_are_framed_and_decoded(
    serve: Callable[..., Awaitable[tuple[Server, int]]], script: Script
) -> None:
    server, port = await serve([script, sized(b"again")])
    origin = Origin("127.0.0.1", port, None)
    response = await origin.request(REQUEST, 1.0)
    assert response.status == 200 and await response.read() == BODY
    second = await origin.request(REQUEST, 1.0)
    assert await second.read() == b"again"
    assert server.connections == 1  # kept alive and reused
    assert server.requests[0].endswith(b"\r\n\r\n{}")
    origin.close()


async def test_body_until_close_and_connection_close_are_not_reused(
    serve: Callable[..., Awaitable[tuple[Server, int]]],
) -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, part two")
        await writer.drain()
        writer.close()

    server, port = await serve([until_close])
    origin = Origin("127.0.0.1", port, None)
    response = await origin.request(REQUEST, 1.0)
    assert await response.read() == b"part one, part two"
    server.scripts.append(sized(b"fresh"))
    assert await (await origin.request(REQUEST, 1.0)).read() == b"fresh"
    assert server.connections == 2


async def test_status_reason_and_case_insensitive_headers(
    serve: Callable[..., Awaitable[tuple[Server, int]]],
) -> None:
    _, port = await serve([sized(b"{}", "Retry-After: 3", status="429 Too Many Requests")])
    response = await Origin("127.0.0.1", port, None).request(REQUEST, 1.0)
    assert (response.status, response.reason) == (429, "Too Many Requests")
    assert response.headers["retry-after"] == "3" and response.headers["RETRY-AFTER"] == "3"
    response.close()


async def test_large_body_is_read_whole_through_flow_control(
    serve: Callable[..., Awaitable[tuple[Server, int]]],
) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: far above the read-pause threshold
    _, port = await serve([chunked(*(big[i : i + 65536] for i in range(0, len(big), 65536)))])
    response = await Origin("127.0.0.1", port, None).request(REQUEST, 1.0)
    pieces = []
    while chunk := await response.readany():
        pieces.append(chunk)
        await asyncio.sleep(0)
    assert b"".join(pieces) == big and response.at_eof()
    response.release()


async def test_errors_before_and_inside_the_body(
    serve: Callable[..., Awaitable[tuple[Server, int]]],
) -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    for script, error in [(close_at_once, Disconnected), (not_http, InvalidResponse)]:
        _, port = await serve([script])
        with pytest.raises(error):
            await Origin("127.0.0.1", port, None).request(REQUEST, 1.0)
    _, port = await serve([cut])
    response = await Origin("127.0.0.1", port, None).request(REQUEST, 1.0)
    with pytest.raises(BodyCut):
        await response.read()


async def test_connect_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectFailed, match="ConnectionRefusedError"):
        await Origin("127.0.0.1", port, None).request(REQUEST, 1.0)
    with port_that_never_accepts() as port, pytest.raises(ConnectTimeout):
        await Origin("127.0.0.1", port, None).request(REQUEST, 0.2)


async def test_idle_connections_expire_and_close_ends_them(
    serve: Callable[..., Awaitable[tuple[Server, int]]],
) -> None:
    server, port = await serve([sized(b"a")])
    origin = Origin("127.0.0.1", port, None, keepalive=0.05)
    assert await (await origin.request(REQUEST, 1.0)).read() == b"a"
    await asyncio.wait_for(server.closed.wait(), 2)  # the idle connection was closed
    server2, port2 = await serve([sized(b"b")])
    origin2 = Origin("127.0.0.1", port2, None)
    assert await (await origin2.request(REQUEST, 1.0)).read() == b"b"
    origin2.close()
    await asyncio.wait_for(server2.closed.wait(), 2)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Bad", "a\r\nInjected: 1"),
        ("X-Bad", "a\nb"),
        ("Bad Name", "v"),
        ("Bad:Name", "v"),
        ("", "v"),
    ],
)
def test_headers_that_could_split_a_request_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="invalid HTTP header"):
        header_lines([(name, value)])


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


async def test_tls_with_server_name_check(
    serve: Callable[..., Awaitable[tuple[Server, int]]], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    _, port = await serve([sized(b"secure")], server_tls)
    client_tls = ssl.create_default_context(cafile=str(cert))
    response = await Origin("localhost", port, client_tls).request(REQUEST, 2.0)
    assert await response.read() == b"secure"
    with pytest.raises(ConnectFailed, match="SSL"):  # the certificate does not name 127.0.0.1
        await Origin("127.0.0.1", port, client_tls).request(REQUEST, 2.0)


async def test_release_when_done_reuses_the_connection_once_the_end_arrives(
    serve: Callable[..., Awaitable[tuple[Server, int]]],
) -> None:
    async def slow_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def never_ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()

    server, port = await serve([slow_end, sized(b"next"), never_ends, sized(b"fresh")])
    origin = Origin("127.0.0.1", port, None)
    response = await origin.request(REQUEST, 1.0)
    assert await response.readany() == b"hello"
    response.release_when_done(1.0)
    await asyncio.sleep(0.2)
    assert await (await origin.request(REQUEST, 1.0)).read() == b"next"
    assert server.connections == 1  # reused once the end arrived
    response = await origin.request(REQUEST, 1.0)
    assert await response.readany() == b"hello"
    response.release_when_done(0.05)  # the end never comes: closed after the grace
    await asyncio.sleep(0.2)
    assert await (await origin.request(REQUEST, 1.0)).read() == b"fresh"
    assert server.connections == 2


async def test_a_read_or_closed_response_is_freed_without_the_cyclic_collector(
    serve: Callable[..., Awaitable[tuple[Server, int]]],
) -> None:
    # The parser holds the response's bound methods: a cycle unless broken when done.
    import gc
    import weakref

    _, port = await serve([sized(BODY), chunked(b"x" * 10, b"y" * 10)])
    origin = Origin("127.0.0.1", port, None)
    gc.disable()
    try:
        response = await origin.request(REQUEST, 1.0)
        assert await response.read() == BODY
        read = weakref.ref(response)
        response = await origin.request(REQUEST, 1.0)
        await response.headers_received()
        response.close()  # given up before the body's end
        closed = weakref.ref(response)
        del response
        assert read() is None and closed() is None, "a response outlived its use: a cycle"
    finally:
        gc.enable()
        origin.close()
