"""The `/_sim` control routes: faults and stats over HTTP, for the chaos tool and the demo.

GET/POST/PUT/DELETE /_sim/faults   list / add one / replace all / clear
GET /_sim/stats                    counters and recent requests
POST /_sim/reset                   clear faults and stats
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from gateway.simulator.faults import FaultSpec
from gateway.simulator.vendor import Vendor


def control_routes(vendor: Vendor) -> list[web.RouteDef]:
    def listing() -> web.Response:
        return _json([fault.model_dump(mode="json") for fault in vendor.faults.active])

    async def get_faults(request: web.Request) -> web.Response:
        return listing()

    async def add_fault(request: web.Request) -> web.Response:
        try:
            vendor.faults.add(FaultSpec.model_validate(await _body(request)))
        except (ValidationError, ValueError) as exc:
            return _json({"error": str(exc)}, status=400)
        return listing()

    async def replace_faults(request: web.Request) -> web.Response:
        try:
            items = await _body(request)
            if not isinstance(items, list):
                raise ValueError("expected a JSON list of fault specs")
            vendor.set_faults([FaultSpec.model_validate(item) for item in items])
        except (ValidationError, ValueError) as exc:
            return _json({"error": str(exc)}, status=400)
        return listing()

    async def clear_faults(request: web.Request) -> web.Response:
        vendor.faults.clear()
        return listing()

    async def get_stats(request: web.Request) -> web.Response:
        return _json(vendor.stats.snapshot().to_json())

    async def reset(request: web.Request) -> web.Response:
        vendor.reset()
        return _json({"ok": True})

    return [
        web.get("/_sim/faults", get_faults),
        web.post("/_sim/faults", add_fault),
        web.put("/_sim/faults", replace_faults),
        web.delete("/_sim/faults", clear_faults),
        web.get("/_sim/stats", get_stats),
        web.post("/_sim/reset", reset),
    ]


async def _body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")
