"""Anthropic's envelope: `x-api-key` auth and `{"type": "error", "error": {type, message}}`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import orjson
from aiohttp import web

from gateway.simulator.errors import ErrorKind, ErrorReply

MESSAGE_STOP_EVENT = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
MALFORMED_EVENT = b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'

# kind -> (type, message)
_ERRORS: dict[ErrorKind, tuple[str, str]] = {
    "invalid_request": ("invalid_request_error", "Invalid request."),
    "authentication": ("authentication_error", "invalid x-api-key"),
    "not_found": ("not_found_error", "Not found."),
    "rate_limit": (
        "rate_limit_error",
        "Number of requests has exceeded your rate limit. Please try again later.",
    ),
    "server": ("api_error", "Internal server error"),
    "overloaded": ("overloaded_error", "Overloaded"),
    "context_length": ("invalid_request_error", ""),
    "content_policy": ("invalid_request_error", "Output blocked by content filtering policy"),
    "prefill": (
        "invalid_request_error",
        "This model does not support assistant message prefill. "
        "The conversation must end with a user message.",
    ),
}


def sse_event(name: str, data: bytes) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


class AnthropicDialect:
    malformed_json = b'{"id": "msg_broken", "type": "message", "content": [{"type": "te'

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return headers.get("x-api-key") == api_key

    def error(self, error: ErrorReply) -> web.Response:
        kind, message = _ERRORS[error.kind]
        if error.kind == "context_length":
            message = f"prompt is too long: {error.tokens} tokens > {error.limit} maximum"
        body = {
            "type": "error",
            "error": {"type": kind, "message": error.message or message},
            "request_id": "req_" + secrets.token_hex(12),
        }
        return web.Response(
            body=orjson.dumps(body),
            status=error.status,
            content_type="application/json",
            headers=dict(error.headers),
        )
