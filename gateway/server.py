"""Running the gateway on uvicorn (uvloop + httptools), with errors that name the fix."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from gateway.app import GatewayApp, create_app
from gateway.coalesce import CoalescingHttpToolsProtocol
from gateway.config import LoadedConfig


class PortUnavailable(Exception):
    pass


def bind(
    host: str, port: int, option: str = "--port (or server.port in the config)"
) -> socket.socket:
    """Bind the listening socket ourselves, so a taken port is reported plainly."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortUnavailable(
                f"port {port} on {host} is already in use by another process: stop that "
                f"process, or pick a free port with {option}"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise PortUnavailable(
                f"address {host} is not an address of this machine: use 127.0.0.1, 0.0.0.0 "
                f"or one of this host's addresses with --host"
            ) from None
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def build_server(
    loaded: LoadedConfig,
    log_level: str = "warning",
    *,
    config_path: Path | None = None,
    admin_port: int | None = None,
    watch: bool = True,
) -> uvicorn.Server:
    """One uvicorn server; with `admin_port`, pass it both sockets (the app answers the
    admin API on that port only: one loop, one lifespan, one graceful shutdown)."""
    app = create_app(loaded, config_path=config_path, admin_port=admin_port, watch=watch)
    return server_for(app, log_level)


def server_for(app: GatewayApp, log_level: str = "warning") -> uvicorn.Server:
    """The uvicorn server every gateway runs on, for an app already built."""
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,  # httptools, headers and body in one write
        lifespan="on",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,
        proxy_headers=False,  # nothing reads the client address: one ASGI layer less
    )
    return uvicorn.Server(config)


def serve_in_thread(
    server: uvicorn.Server,
    sockets: Sequence[socket.socket],
    timeout: float = 10.0,
    name: str | None = None,
) -> threading.Thread:
    """Run `server` on `sockets` in a daemon thread of this process (tests, chaos runs);
    return the thread once the server serves. Stop it with `server.should_exit = True`."""
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": list(sockets)}, name=name, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            for sock in sockets:
                sock.close()
            raise RuntimeError("the gateway did not start (see the log above)")
        time.sleep(0.01)
    return thread
