"""Error replies in a vendor-neutral form; each wire dialect renders them in its own shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.simulator.faults import FaultSpec

ErrorKind = Literal[
    "invalid_request",
    "authentication",
    "not_found",
    "rate_limit",
    "server",
    "overloaded",
    "context_length",
    "content_policy",
    "prefill",
]

# What a fault's `context_length` error claims when the vendor has no `context_window`.
DEFAULT_CONTEXT_WINDOW = 4096


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error answer. `message` None means the dialect's usual text for `kind`.

    `tokens` and `limit` feed the context-length message.
    """

    status: int
    kind: ErrorKind
    message: str | None = None
    param: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    tokens: int = 0
    limit: int = 0


def invalid_request(message: str, param: str | None = None) -> ErrorReply:
    return ErrorReply(400, "invalid_request", message, param)


def context_length(tokens: int, limit: int) -> ErrorReply:
    return ErrorReply(400, "context_length", param="messages", tokens=tokens, limit=limit)


def for_fault(fault: FaultSpec, prompt_tokens: int, window: int | None) -> ErrorReply | None:
    """The error a fault answers with, or None for faults that are not plain errors."""
    if fault.kind == "status":
        return ErrorReply(fault.status, _kind_of_status(fault.status))
    if fault.kind == "rate_limit":
        return ErrorReply(429, "rate_limit", headers=_rate_limit_headers(fault))
    if fault.kind == "context_length":
        limit = window or DEFAULT_CONTEXT_WINDOW
        return context_length(max(prompt_tokens, limit + 1), limit)
    if fault.kind == "content_policy":
        return ErrorReply(400, "content_policy", param="prompt")
    return None


def _kind_of_status(status: int) -> ErrorKind:
    if status == 401:
        return "authentication"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limit"
    if status == 529:
        return "overloaded"
    if status >= 500:
        return "server"
    return "invalid_request"


def _rate_limit_headers(fault: FaultSpec) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        headers.append(("Retry-After", f"{fault.retry_after:g}"))
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", str(fault.retry_after_ms)))
    if fault.reset_header is not None:
        headers.append(("x-ratelimit-reset-requests", fault.reset_header))
    return tuple(headers)
