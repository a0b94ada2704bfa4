"""Raw ASGI responses for the hot path: JSON, OpenAI-shaped errors, response headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson

from gateway.errors import AttemptRecord, ClientRequestError, NoDeploymentSucceeded, VendorRejected

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
ASGISend = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def route_header(attempts: Sequence[AttemptRecord]) -> str:
    """Compact `deployment=outcome:reason` list of every attempt, in order."""
    parts = []
    for a in attempts:
        parts.append(
            f"{a.deployment}={a.outcome}"
            if a.outcome == "ok"
            else f"{a.deployment}={a.outcome}:{a.reason}"
        )
    return ",".join(parts)


def gateway_headers(
    request_id: str,
    attempts: Sequence[AttemptRecord],
    provider: str | None = None,
    model: str | None = None,
    config_version: str | None = None,
) -> Headers:
    tried = sum(1 for a in attempts if a.outcome != "skipped")
    headers = [
        (b"x-request-id", request_id.encode()),
        (b"x-gateway-attempts", str(tried).encode()),
        (b"x-gateway-route", route_header(attempts).encode("latin-1", "replace")),
    ]
    if provider is not None:
        headers.append((b"x-gateway-provider", provider.encode()))
    if model is not None:
        headers.append((b"x-gateway-model", model.encode("latin-1", "replace")))
    if config_version is not None:
        headers.append((b"x-gateway-config-version", config_version.encode()))
    return headers


async def send_json(
    send: ASGISend, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON_TYPE, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def error_body(
    message: str, error_type: str, code: str | None, param: str | None = None, **extra: Any
) -> bytes:
    error: dict[str, Any] = {"message": message, "type": error_type, "param": param, "code": code}
    error.update(extra)
    return orjson.dumps({"error": error})


def client_error(exc: ClientRequestError) -> tuple[int, bytes]:
    return exc.status, error_body(exc.message, exc.error_type, exc.code, exc.param)


def vendor_rejected(exc: VendorRejected) -> tuple[int, bytes]:
    status = exc.error.status or 400
    error_type = "invalid_request_error" if status < 500 else "api_error"
    code = exc.error.vendor_code or exc.reason
    return status, error_body(exc.error.message, error_type, code, None, provider=exc.deployment)


def all_failed(exc: NoDeploymentSucceeded) -> tuple[int, bytes, Headers]:
    tried = [a for a in exc.attempts if a.outcome != "skipped"]
    summary = "; ".join(f"{a.deployment}: {a.reason}" for a in exc.attempts) or "none available"
    stop = getattr(exc, "stop_reason", "")
    message = (
        f"All deployments for model '{exc.alias}' failed or are unavailable "
        f"({len(tried)} attempted{', stopped by ' + stop if stop else ''}): {summary}. "
        "Retry after the time in the Retry-After header."
    )
    attempts = [
        {
            "deployment": a.deployment,
            "provider": a.provider,
            "model": a.model,
            "outcome": a.outcome,
            "reason": a.reason,
            "status": a.status,
            "message": a.message[:300],
            "duration_ms": a.duration_ms,
        }
        for a in exc.attempts
    ]
    body = error_body(message, "upstream_error", "all_providers_failed", None, attempts=attempts)
    retry_after = str(max(1, round(exc.retry_after)))
    return exc.status, body, [(b"retry-after", retry_after.encode())]
