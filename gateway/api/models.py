"""GET /v1/models: the configured aliases, in OpenAI's list shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from gateway.state import GatewayState


def models_router(get_state: Callable[[], GatewayState]) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        snapshot = get_state().snapshot
        data = [
            {"id": alias, "object": "model", "created": 0, "owned_by": "failover-gateway"}
            for alias in snapshot.routes
        ]
        return {"object": "list", "data": data}

    return router
