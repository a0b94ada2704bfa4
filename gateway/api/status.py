"""GET /status (also /v1/gateway/status): every deployment's state, why, since when,
last error, success rate, latency and TTFT percentiles, in-flight count.
GET /v1/gateway/explain/{alias}: the plan a request to that alias would follow now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.api.responses import error_body
from gateway.health.report import explain_report, status_report
from gateway.state import GatewayState


def status_router(get_state: Callable[[], GatewayState]) -> APIRouter:
    router = APIRouter()

    @router.get("/status")
    @router.get("/v1/gateway/status")
    async def status() -> dict[str, Any]:
        return status_report(get_state())

    @router.get("/explain/{alias:path}")
    @router.get("/v1/gateway/explain/{alias:path}")
    async def explain(alias: str) -> Any:
        state = get_state()
        route = state.snapshot.routes.get(alias)
        if route is None:
            known = ", ".join(sorted(state.snapshot.routes)) or "none"
            body = error_body(
                f"The model '{alias}' does not exist on this gateway. Configured models: {known}.",
                "invalid_request_error",
                "model_not_found",
                "alias",
            )
            return Response(body, status_code=404, media_type="application/json")
        return explain_report(state, route)

    return router
