"""The hot path: POST /v1/chat/completions and /v1/embeddings as plain ASGI handlers.

No framework layer sits between uvicorn and these handlers: the body is parsed once with
orjson, the vendor's bytes are relayed as received, and a client that disconnects
cancels the upstream request (from `WATCH_AFTER` on: quicker answers need no watch).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable
from typing import Any

import orjson

from gateway.api import responses
from gateway.api.disconnect import DisconnectWatch, LateWatches
from gateway.api.responses import ASGISend, Receive, Scope
from gateway.errors import (
    ClientRequestError,
    InvalidRequest,
    NoDeploymentSucceeded,
    UnknownModel,
    VendorRejected,
)
from gateway.failover import RequestContext, initial_candidates, walk
from gateway.providers.base import UpstreamRequest, UpstreamResponse
from gateway.routing import Deployment
from gateway.state import GatewayState
from gateway.streaming import Relay, open_stream

MAX_BODY = 16 * 1024 * 1024
WATCH_AFTER = 0.05  # seconds; a vendor's tokens in that time cost less than a watch each
log = logging.getLogger("gateway.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


async def read_body(receive: Receive) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise InvalidRequest(
                f"Request body is larger than {MAX_BODY} bytes.", code="request_too_large"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_payload(raw: bytes, endpoint: str) -> dict[str, Any]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc}.", code="invalid_json"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "'model' is required and must be a non-empty string.",
            code="invalid_value",
            param="model",
        )
    if endpoint == "chat":
        _check_messages(payload.get("messages"))
        if not isinstance(payload.get("stream", False), bool):
            raise InvalidRequest("'stream' must be a boolean.", code="invalid_type", param="stream")
    elif not isinstance(payload.get("input"), str | list) or not payload["input"]:
        raise InvalidRequest(
            "'input' is required: a string or a non-empty array.",
            code="invalid_value",
            param="input",
        )
    return payload


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "'messages' is required and must be a non-empty array.",
            code="invalid_value",
            param="messages",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"messages[{i}] must be an object with a string 'role'.",
                code="invalid_value",
                param=f"messages[{i}]",
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _deadline(scope: Scope, route_timeout: float, now: float) -> float:
    asked = _header(scope, b"x-gateway-timeout")
    if asked is None:
        return now + route_timeout
    try:
        seconds = float(asked)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 1e6:
        raise InvalidRequest(
            "Header x-gateway-timeout must be a positive number of seconds.",
            code="invalid_value",
            param="x-gateway-timeout",
        )
    return now + min(seconds, route_timeout)


class OpenAIEndpoint:
    """One OpenAI endpoint family member; `get_state` returns the live GatewayState."""

    def __init__(self, get_state: Callable[[], GatewayState], endpoint: str) -> None:
        self.get_state = get_state
        self.endpoint = endpoint
        self._ids = random.Random()  # seeded from os.urandom once; no syscall per request id
        self._watches = LateWatches(WATCH_AFTER)

    async def __call__(self, scope: Scope, receive: Receive, send: ASGISend) -> None:
        request_id = _header(scope, b"x-request-id") or ""
        if not _REQUEST_ID.match(request_id):
            request_id = f"{self._ids.getrandbits(128):032x}"
        try:
            if scope["method"] != "POST":
                raise InvalidRequest("Use POST for this endpoint.", code="method_not_allowed")
            payload = parse_payload(await read_body(receive), self.endpoint)
            await self._serve(scope, receive, send, payload, request_id)
        except ClientRequestError as exc:
            status, body = responses.client_error(exc)
            if exc.code == "method_not_allowed":
                status = 405
            await responses.send_json(send, status, body, [(b"x-request-id", request_id.encode())])
            code = exc.code or "invalid_request_error"
            self.get_state().observer.request_rejected(request_id, self.endpoint, status, code)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: ASGISend,
        payload: dict[str, Any],
        request_id: str,
    ) -> None:
        state = self.get_state()
        snapshot = state.snapshot
        route = snapshot.routes.get(payload["model"])
        if route is None:
            raise UnknownModel(payload["model"], list(snapshot.routes))
        now = state.clock()
        ctx = RequestContext(
            request_id,
            route,
            snapshot,
            payload,
            self.endpoint,
            _deadline(scope, route.config.timeout, now),
            observer=state.observer,
            headers=scope["headers"],
            started=now,
        )
        state.budget.record_request(now)
        state.observer.request_started(ctx)
        stream = payload.get("stream") is True and self.endpoint == "chat"
        version = f"{snapshot.version}-{snapshot.loaded.digest}"
        watch = self._watches.watch(receive)
        try:
            if stream:
                await self._stream(state, ctx, watch, send, version)
            else:
                await self._complete(state, ctx, watch, send, version)
        except asyncio.CancelledError:
            if not watch.stop():
                raise
            # The client left before an answer began; the upstream attempt was cancelled.
            state.observer.request_finished(ctx, 499, None, None, stream)
        except VendorRejected as exc:
            watch.stop()
            status, body = responses.vendor_rejected(exc)
            headers = responses.gateway_headers(request_id, ctx.attempts, config_version=version)
            await responses.send_json(send, status, body, headers)
            state.observer.request_finished(ctx, status, None, None, stream)
        except NoDeploymentSucceeded as exc:
            watch.stop()
            status, body, extra = responses.all_failed(exc)
            headers = responses.gateway_headers(request_id, ctx.attempts, config_version=version)
            await responses.send_json(send, status, body, [*extra, *headers])
            state.observer.request_finished(ctx, status, None, None, stream)
        except Exception:
            watch.stop()
            # A bug of ours. The client still gets an OpenAI error (unless its answer has
            # begun: then the connection is dropped, never ended as if complete), and the
            # request is still counted and logged, once.
            log.exception("request %s failed inside the gateway", request_id)
            state.observer.request_finished(ctx, 500, None, None, stream)
            body = responses.error_body(
                f"The gateway failed on this request (x-request-id {request_id}); "
                "its log has the cause.",
                "server_error",
                "internal_error",
            )
            headers = responses.gateway_headers(request_id, ctx.attempts, config_version=version)
            await responses.send_json(send, 500, body, headers)  # raises if it had begun

    async def _complete(
        self,
        state: GatewayState,
        ctx: RequestContext,
        watch: DisconnectWatch,
        send: ASGISend,
        version: str,
    ) -> None:
        candidates, retry_after = initial_candidates(state, ctx)

        async def start(d: Deployment, request: UpstreamRequest) -> UpstreamResponse:
            return await state.adapters[d.provider].complete(request)

        success = await walk(
            state,
            ctx,
            candidates,
            start,
            lambda d: {**ctx.body, "model": d.model},
            retry_after=retry_after,
        )
        success.finish()
        watch.stop()  # before the answer: a complete response reads as a disconnect
        d, answer = success.deployment, success.value
        ctx.note(d, "ok", "ok", 200, "", state.clock() - success.started)
        model = answer.data.get("model") or d.model
        headers = responses.gateway_headers(
            ctx.request_id, ctx.attempts, d.provider, str(model), version
        )
        await responses.send_json(send, 200, answer.raw, headers)
        state.observer.request_finished(ctx, 200, d, answer.data.get("usage"), False)

    async def _stream(
        self,
        state: GatewayState,
        ctx: RequestContext,
        watch: DisconnectWatch,
        send: ASGISend,
        version: str,
    ) -> None:
        success = await open_stream(state, ctx)
        d = success.deployment
        ctx.note(d, "ok", "ok", 200, "", state.clock() - success.started)
        first_model = next(
            (c.get("model") for c, _ in success.value.held if c.get("model")), d.model
        )
        headers = responses.gateway_headers(
            ctx.request_id, ctx.attempts, d.provider, str(first_model), version
        )
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [*responses.SSE_HEADERS, *headers],
        }

        async def send_bytes(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        relay = Relay(state, ctx, send_bytes)
        try:
            await send(start)
            complete = await relay.run(success)
        except asyncio.CancelledError:
            left = watch.stop()
            await relay.abandon(success)
            if not left:
                raise
            status = 499  # the client went away; the upstream request was cancelled
        else:
            watch.stop()
            await send({"type": "http.response.body", "body": relay.tail(), "more_body": False})
            status = 200 if complete else 502
        state.observer.request_finished(ctx, status, d, relay.delivered.usage, True)
