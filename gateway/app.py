"""create_app: wiring only. The lifespan builds the one GatewayState."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gateway.api.admin import AdminTokens, admin_app
from gateway.api.faults import faults_router
from gateway.api.health import health_router
from gateway.api.models import models_router
from gateway.api.openai import OpenAIEndpoint
from gateway.api.responses import ASGISend, Receive, Scope, error_body
from gateway.api.status import status_router
from gateway.config import LoadedConfig
from gateway.control.plane import ControlPlane
from gateway.health.monitor import HealthMonitor
from gateway.state import GatewayState
from gateway.telemetry.setup import Telemetry


class GatewayApp:
    """ASGI entry point: the hot OpenAI routes go straight to their handlers, the rest
    (models, health, admin, metrics) through FastAPI."""

    def __init__(
        self,
        loaded: LoadedConfig,
        telemetry: Telemetry | None = None,
        *,
        config_path: Path | None = None,
        admin_port: int | None = None,
        watch: bool = True,
    ) -> None:
        self.loaded = loaded
        # Reloads and operator changes; the admin API answers on `admin_port` only.
        self.control = ControlPlane(loaded, config_path, watch=watch)
        self.admin_port = admin_port
        self.admin = admin_app(self.control, AdminTokens.from_env(loaded.config.admin))
        self.admin.include_router(faults_router(self.state))
        self._state: GatewayState | None = None
        self.health = HealthMonitor()
        self.telemetry = telemetry or Telemetry(loaded.config.telemetry)
        self.api = FastAPI(
            title="failover-gateway", lifespan=self._lifespan, docs_url=None, redoc_url=None
        )
        self.api.include_router(health_router(lambda: self._state))
        self.api.include_router(models_router(self.state))
        self.api.include_router(status_router(self.state))
        self.api.include_router(self.telemetry.router())
        self.api.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
        self.api.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
        chat = OpenAIEndpoint(self.state, "chat")
        embeddings = OpenAIEndpoint(self.state, "embeddings")
        self.hot = {
            "/v1/chat/completions": chat,
            "/chat/completions": chat,
            "/v1/embeddings": embeddings,
            "/embeddings": embeddings,
        }

    def state(self) -> GatewayState:
        if self._state is None:
            raise RuntimeError("the gateway state is built in the lifespan; it has not started")
        return self._state

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        listeners = (self.health.on_breaker_change, self.telemetry.on_breaker_change)
        self._state = GatewayState.create(self.loaded, breaker_listeners=listeners)
        self.health.attach(self._state)
        self.telemetry.attach(self._state)
        self.health.start()
        try:
            await self.control.start(self._state)
            yield
        finally:
            await self.control.stop()
            await self.health.stop()
            self.telemetry.shutdown()
            state, self._state = self._state, None
            await state.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: ASGISend) -> None:
        if scope["type"] == "http":
            admin = self.admin_port
            if admin is not None and (scope.get("server") or ("", 0))[1] == admin:
                await self.admin(scope, receive, send)  # type: ignore[arg-type]
                return
            handler = self.hot.get(scope["path"])
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.api(scope, receive, send)  # type: ignore[arg-type]


async def _http_error(_: Request, exc: HTTPException) -> Response:
    code = "not_found" if exc.status_code == 404 else "http_error"
    body = error_body(str(exc.detail), "invalid_request_error", code)
    return Response(body, status_code=exc.status_code, media_type="application/json")


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    body = error_body(f"Invalid request: {exc.errors()}", "invalid_request_error", "invalid_value")
    return Response(body, status_code=400, media_type="application/json")


def create_app(
    loaded: LoadedConfig,
    *,
    config_path: Path | None = None,
    admin_port: int | None = None,
    watch: bool = True,
) -> GatewayApp:
    return GatewayApp(loaded, config_path=config_path, admin_port=admin_port, watch=watch)
