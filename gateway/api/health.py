"""Liveness and readiness. Liveness never depends on vendors or Redis."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.state import GatewayState


def health_router(get_state: Callable[[], GatewayState | None]) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        state = get_state()
        if state is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        if state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ready", "config_version": state.snapshot.version})

    return router
