"""Admin routes of the fault-injection layer (mounted on the admin API, behind its token).

    GET    /admin/faults        enabled?, the cap and what is left of it, every rule
    POST   /admin/faults        add a rule: {"deployment": "alpha/gpt-4o", "action": "abort",
                                "status": 503, "percent": 50, "max_requests": 100}
    DELETE /admin/faults/{id}   remove one rule
    DELETE /admin/faults        remove every rule

Errors use the OpenAI error shape and say how to fix the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from gateway.api.responses import error_body
from gateway.providers.fault_injection import FaultRule
from gateway.state import GatewayState

LOG = logging.getLogger("gateway.faults")


def _error(status: int, message: str, code: str, **extra: Any) -> Response:
    body = error_body(message, "invalid_request_error", code, None, **extra)
    return Response(body, status_code=status, media_type="application/json")


def _problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(body)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        out.append(f"{path}: {msg}")
    return out


def _parse(raw: bytes) -> FaultRule | Response:
    try:
        return FaultRule.model_validate(orjson.loads(raw or b"null"))
    except orjson.JSONDecodeError:
        return _error(400, "The request body is not valid JSON.", "invalid_json")
    except ValidationError as exc:
        problems = _problems(exc)
        return _error(
            400,
            "Invalid fault rule: " + "; ".join(problems) + ". Example: "
            '{"deployment": "provider/model", "action": "abort", "status": 503, "percent": 50}',
            "invalid_value",
            problems=problems,
        )


def faults_router(get_state: Callable[[], GatewayState]) -> APIRouter:
    router = APIRouter()

    @router.get("/admin/faults")
    async def listing() -> JSONResponse:
        return JSONResponse(get_state().fault_injector.to_json())

    @router.post("/admin/faults")
    async def add(request: Request) -> Response:
        state = get_state()
        injector = state.fault_injector
        if not injector.enabled:
            return _error(
                409,
                "Fault injection is off: set `fault_injection: {enabled: true}` in "
                "providers.yaml and reload the gateway (never in production).",
                "fault_injection_disabled",
            )
        parsed = _parse(await request.body())
        if isinstance(parsed, Response):
            return parsed
        if parsed.deployment not in state.runtimes:
            known = ", ".join(sorted(state.runtimes)) or "none"
            return _error(
                404,
                f"No deployment '{parsed.deployment}' on this gateway; known: {known}.",
                "unknown_deployment",
            )
        if injector.remaining == 0:
            return _error(
                409,
                f"The fault-injection cap of {injector.config.max_requests} requests is spent; "
                "raise fault_injection.max_requests and restart the gateway to inject more.",
                "fault_injection_exhausted",
            )
        active = injector.add(parsed)
        LOG.warning("fault injection rule %d added: %s on %s", active.id, parsed.describe(),
                    parsed.deployment)  # fmt: skip
        return JSONResponse(active.to_json(), status_code=201)

    @router.delete("/admin/faults/{rule_id}")
    async def remove(rule_id: int) -> Response:
        if not get_state().fault_injector.remove(rule_id):
            return _error(
                404, f"No fault rule {rule_id}; GET /admin/faults lists them.", "not_found"
            )
        LOG.warning("fault injection rule %d removed", rule_id)
        return JSONResponse({"removed": [rule_id]})

    @router.delete("/admin/faults")
    async def clear() -> JSONResponse:
        count = get_state().fault_injector.clear()
        LOG.warning("fault injection: all %d rules removed", count)
        return JSONResponse({"removed": count})

    return router
