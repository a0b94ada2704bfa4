"""The adapter seam: one small protocol every vendor adapter implements.

An adapter speaks to one provider. It takes an OpenAI-format request body (already
rewritten for the deployment's vendor model) and returns OpenAI-format results: raw bytes
to relay plus the parsed object the gateway inspects. It never retries and never fails
over; it raises `gateway.errors.UpstreamError` subclasses for every failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One attempt's input. `body` is OpenAI-format JSON with `model` set to the vendor model."""

    body: dict[str, Any]
    endpoint: str  # "chat" | "embeddings"
    connect_timeout: float
    first_token_timeout: float  # non-streaming: whole response; streaming: first chunk
    idle_timeout: float  # streaming: longest silence between chunks
    extra_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A complete non-streaming answer: `raw` is relayed as is, `data` is its parsed form."""

    raw: bytes
    data: dict[str, Any]
    headers: Mapping[str, str]


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether a stream request asks for the usage chunk (`stream_options.include_usage`)."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def asking_usage(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with `stream_options.include_usage` on, the client's other options kept: the
    gateway counts a stream's tokens whether or not its client asked for them."""
    if wants_usage(body):
        return body
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    return {**body, "stream_options": {**options, "include_usage": True}}


class StreamEvent(NamedTuple):
    """One SSE `data:` event of an OpenAI-format stream.

    `raw` is the exact bytes to relay (`data: {...}\\n\\n`); `data` is the parsed chunk,
    or None for the terminal `[DONE]` event. `more` says the adapter already holds the next
    event (both came in one network read), so a relay may send them in one write.
    A NamedTuple, not a frozen dataclass: one is built per event, and a frozen
    dataclass's __init__ costs three times as much.
    """

    raw: bytes
    data: dict[str, Any] | None
    more: bool = False

    @property
    def is_done(self) -> bool:
        return self.data is None


class UpstreamStream(Protocol):
    """An open stream whose headers arrived with a 2xx status.

    Iterating yields events; the first `__anext__` is bounded by the first-token timeout
    and later ones by the idle timeout (the adapter enforces both and raises
    `UpstreamTimeout`). A stream that breaks raises `UpstreamStreamCut`; a malformed
    chunk raises `UpstreamProtocolError`; a stream that ends without `[DONE]` simply
    stops iterating (the caller decides whether it finished). `aclose` releases the
    connection at once and is safe to call twice.
    """

    headers: Mapping[str, str]

    def __aiter__(self) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...


class Adapter(Protocol):
    """Speaks to one provider. Safe to share between concurrent requests."""

    async def complete(self, request: UpstreamRequest) -> UpstreamResponse: ...

    async def stream(self, request: UpstreamRequest) -> UpstreamStream: ...

    async def aclose(self) -> None: ...
