"""OpenAI's envelope: bearer-key auth and `{"error": {message, type, param, code}}` errors."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from gateway.simulator.errors import ErrorKind, ErrorReply

# kind -> (type, code, message)
_ERRORS: dict[ErrorKind, tuple[str, str | None, str]] = {
    "invalid_request": ("invalid_request_error", None, "Invalid request."),
    "authentication": (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided.",
    ),
    "not_found": ("invalid_request_error", "not_found", "Not found."),
    "rate_limit": (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    "server": (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "overloaded": (
        "server_error",
        "overloaded",
        "The engine is currently overloaded, please try again later.",
    ),
    "context_length": ("invalid_request_error", "context_length_exceeded", ""),
    "content_policy": (
        "invalid_request_error",
        "content_policy_violation",
        "Your request was rejected as a result of our safety system. Your prompt may "
        "contain text that is not allowed by our safety system.",
    ),
    "prefill": (
        "invalid_request_error",
        None,
        "This model does not support assistant message prefill. "
        "The conversation must end with a user message.",
    ),
}


DONE_EVENT = b"data: [DONE]\n\n"
MALFORMED_EVENT = b'data: {"id": "chatcmpl-broken", "object": "chat.completion.chunk", "ch\n\n'


class OpenAIDialect:
    malformed_json = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{'

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return headers.get("Authorization") == f"Bearer {api_key}"

    def error(self, error: ErrorReply) -> web.Response:
        kind, code, message = _ERRORS[error.kind]
        if error.kind == "context_length":
            message = (
                f"This model's maximum context length is {error.limit} tokens. However, your "
                f"messages resulted in {error.tokens} tokens. Please reduce the length of the "
                "messages."
            )
        body = {
            "error": {
                "message": error.message or message,
                "type": kind,
                "param": error.param,
                "code": code,
            }
        }
        return web.Response(
            body=orjson.dumps(body),
            status=error.status,
            content_type="application/json",
            headers=dict(error.headers),
        )
