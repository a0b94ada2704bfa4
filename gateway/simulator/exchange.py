"""The one request pipeline every simulated endpoint runs through.

record → authenticate → parse → roll for a fault → act out faults that pre-empt the
answer (status, rate limit, latency, reset, hang) → build the answer → send it, acting
out faults that spoil a response (malformed, cut, stall, no_done, slow first token).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from gateway.simulator import delivery, errors
from gateway.simulator.answers import estimate_tokens
from gateway.simulator.delivery import StreamPlan
from gateway.simulator.errors import ErrorReply
from gateway.simulator.faults import FaultSpec, PathKind
from gateway.simulator.vendor import Vendor

Answer = bytes | StreamPlan | ErrorReply


class Dialect(Protocol):
    """A vendor wire format's envelope: credentials, errors, broken samples."""

    malformed_json: bytes

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool: ...

    def error(self, error: ErrorReply) -> web.Response: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    """`answer` builds the healthy answer from the vendor and the JSON body (pure)."""

    path: PathKind
    dialect: Dialect
    answer: Callable[[Vendor, dict[str, Any]], Answer]


async def serve(vendor: Vendor, endpoint: Endpoint, request: web.Request) -> web.StreamResponse:
    raw = await request.read() if request.body_exists else b""
    body, parsed = _parse(raw)
    vendor.stats.begin(endpoint.path, body, request.headers)
    try:
        response = await _respond(vendor, endpoint, request, body, parsed, len(raw))
    except ConnectionError:
        response = None
    finally:
        vendor.stats.end()
    if response is None:
        # The connection is already gone: aiohttp fails to send this and moves on quietly.
        return web.Response()
    if not response.prepared:
        vendor.stats.status(response.status)
    return response


def _parse(raw: bytes) -> tuple[Any, bool]:
    if not raw:
        return None, True
    try:
        return orjson.loads(raw), True
    except orjson.JSONDecodeError:
        return None, False


async def _respond(
    vendor: Vendor,
    endpoint: Endpoint,
    request: web.Request,
    body: Any,
    parsed: bool,
    size: int,
) -> web.StreamResponse | None:
    dialect = endpoint.dialect
    key = vendor.spec.api_key
    if key is not None and not dialect.authorized(request.headers, key):
        return dialect.error(ErrorReply(401, "authentication"))
    if not parsed or not isinstance(body, dict | None):
        return dialect.error(errors.invalid_request("The request body is not a JSON object."))
    fields: dict[str, Any] = body or {}
    streaming = fields.get("stream") is True
    fault = vendor.faults.decide(endpoint.path, streaming, vendor.rng)
    if fault is not None:
        vendor.stats.fault(fault.kind)
        done, early = await _pre_empt(vendor, dialect, request, fault, streaming, size)
        if done:
            return early
    answer = endpoint.answer(vendor, fields)
    if isinstance(answer, ErrorReply):
        return dialect.error(answer)
    if isinstance(answer, StreamPlan):
        return await delivery.stream(request, vendor, answer, fault)
    return await _send_json(vendor, dialect, request, answer, fault)


async def _pre_empt(
    vendor: Vendor,
    dialect: Dialect,
    request: web.Request,
    fault: FaultSpec,
    streaming: bool,
    size: int,
) -> tuple[bool, web.StreamResponse | None]:
    """Act out a fault that comes before any answer; True if the request is finished."""
    kind = fault.kind
    if kind == "latency" or (kind == "slow_first_token" and not streaming):
        if await delivery.pause(vendor, fault.delay_ms / 1000):
            delivery.drop(request)
            return True, None
        return False, None
    if kind == "reset":
        delivery.drop(request, reset=True)
        return True, None
    if kind == "hang":
        await delivery.hold(request, vendor)
        return True, None
    error = errors.for_fault(fault, estimate_tokens(size), vendor.spec.context_window)
    if error is not None:
        return True, dialect.error(error)
    return False, None


async def _send_json(
    vendor: Vendor, dialect: Dialect, request: web.Request, body: bytes, fault: FaultSpec | None
) -> web.StreamResponse:
    kind = fault.kind if fault is not None else None
    if kind == "malformed":
        return delivery.json_response(dialect.malformed_json)
    if kind in ("cut", "stall"):
        return await delivery.partial(request, vendor, body, stall=kind == "stall")
    return delivery.json_response(body)
