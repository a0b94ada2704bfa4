"""One simulated vendor listening on a loopback port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.simulator import exchange
from gateway.simulator.anthropic_dialect import AnthropicDialect
from gateway.simulator.anthropic_messages import answer_messages
from gateway.simulator.control import control_routes
from gateway.simulator.errors import ErrorReply
from gateway.simulator.exchange import Endpoint
from gateway.simulator.openai_chat import answer_chat
from gateway.simulator.openai_dialect import OpenAIDialect
from gateway.simulator.openai_resources import answer_embeddings, answer_models
from gateway.simulator.vendor import Vendor, VendorSpec

# Backstop only: stopping releases held handlers first, so they end at once.
SHUTDOWN_TIMEOUT = 2.0
MAX_BODY = 32 * 1024 * 1024


def build_app(vendor: Vendor) -> web.Application:
    openai, anthropic = OpenAIDialect(), AnthropicDialect()
    endpoints = {
        ("POST", "/v1/chat/completions"): Endpoint("chat", openai, answer_chat),
        ("POST", "/v1/embeddings"): Endpoint("embeddings", openai, answer_embeddings),
        ("GET", "/v1/models"): Endpoint("models", openai, answer_models),
        ("POST", "/v1/messages"): Endpoint("messages", anthropic, answer_messages),
    }
    app = web.Application(client_max_size=MAX_BODY)
    for (method, path), endpoint in endpoints.items():
        app.router.add_route(method, path, _handler(vendor, endpoint))
    app.add_routes(control_routes(vendor))

    async def not_found(request: web.Request) -> web.Response:
        return openai.error(ErrorReply(404, "not_found", f"Unknown path {request.path}."))

    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def _handler(
    vendor: Vendor, endpoint: Endpoint
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await exchange.serve(vendor, endpoint, request)

    return handle


class VendorServer:
    """Serves one vendor on the running event loop: `start`, then `stop`."""

    def __init__(self, spec: VendorSpec) -> None:
        self.vendor = Vendor(spec)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def spec(self) -> VendorSpec:
        return self.vendor.spec

    async def start(self) -> None:
        runner = web.AppRunner(
            build_app(self.vendor),
            handle_signals=False,
            access_log=None,
            # A client that leaves cancels its handler, so a hang ends with its client.
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.spec.host, self.spec.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._site = site
        self.port = int(runner.addresses[0][1])

    @property
    def listening(self) -> bool:
        return self._site is not None

    async def stop_listening(self) -> None:
        """Go hard down: close the port (new connections are refused) and abort every open
        connection, pooled keep-alive ones included. `start_listening` reopens the port."""
        runner, site, self._site = self._runner, self._site, None
        if runner is None or site is None:
            return
        await site.stop()
        if runner.server is not None:
            for handler in runner.server.connections:
                if handler.transport is not None:
                    handler.transport.abort()

    async def start_listening(self) -> None:
        """Reopen the port `stop_listening` closed (the same port number)."""
        if self._runner is None or self._site is not None:
            return
        site = web.TCPSite(self._runner, self.spec.host, self.port)
        await site.start()
        self._site = site

    async def stop(self) -> None:
        self.vendor.closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
