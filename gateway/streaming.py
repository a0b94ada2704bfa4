"""Streaming: fail over freely until the first token, relay, and rescue a broken stream.

Before commit, role-only chunks are held back, so the time-to-first-token timeout covers
the first real token and a vendor that opens and stalls is simply failed over. After the
first byte, a cut, a stall, a malformed chunk or an end without `[DONE]` and without a
finish reason is rescued on another deployment (continuation by prefill, or replay and
splice) so the client gets one coherent stream; when no rescue is possible the stream
ends with an OpenAI-style error event naming the real failure. Never a silent truncation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import (
    NoDeploymentSucceeded,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamStreamCut,
    UpstreamTimeout,
    VendorRejected,
)
from gateway.failover import RequestContext, Success, initial_candidates, walk
from gateway.providers.base import StreamEvent, UpstreamRequest, UpstreamStream, wants_usage
from gateway.routing import Deployment, plan
from gateway.splice import Delivered, Splicer, continuation_body, meaningful, rewrite
from gateway.state import GatewayState

DONE = b"data: [DONE]\n\n"
Send = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class Opened:
    """A stream positioned at its first chunk to relay; `held` are chunks already read."""

    stream: UpstreamStream
    events: AsyncIterator[StreamEvent]
    held: list[tuple[dict[str, Any], bytes]]
    splicer: Splicer | None = None
    continuing: bool = False
    more: bool = False  # the adapter already holds the event after the held ones


async def _first_events(
    state: GatewayState,
    request: UpstreamRequest,
    d: Deployment,
    splicer: Splicer | None,
    chunk_id: str,
) -> Opened:
    """Open a stream and read until its first meaningful chunk (bounded by first_token)."""
    stream = await state.adapters[d.provider].stream(request)
    events = stream.__aiter__()
    held: list[tuple[dict[str, Any], bytes]] = []
    try:
        async with asyncio.timeout(request.first_token_timeout):
            while True:
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    raise UpstreamStreamCut("stream ended before its first token") from None
                if event.data is None:
                    raise UpstreamStreamCut("stream ended before its first token")
                if "error" in event.data:
                    raise UpstreamProtocolError(_vendor_stream_error(event.data))
                if splicer is not None:
                    chunk = splicer.feed(event.data)
                    if chunk is not None:
                        held.append((chunk, _encode(chunk)))
                        return Opened(stream, events, held, splicer, more=event.more)
                    continue
                if chunk_id:  # continuation of a rescued stream
                    chunk = rewrite(event.data, chunk_id)
                    held.append((chunk, _encode(chunk)))
                else:
                    held.append((event.data, event.raw))
                if meaningful(event.data):
                    return Opened(stream, events, held, None, bool(chunk_id), event.more)
    except TimeoutError:
        await stream.aclose()
        raise UpstreamTimeout(
            "no first token within the first-token timeout", phase="first_token"
        ) from None
    except BaseException:
        await stream.aclose()
        raise


def _vendor_stream_error(data: dict[str, Any]) -> str:
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return f"vendor sent an error event: {str(message)[:200]}"


def _encode(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def open_stream(state: GatewayState, ctx: RequestContext) -> Success[Opened]:
    """Fail over until some deployment produced a first token. Nothing is sent yet."""
    candidates, retry_after = initial_candidates(state, ctx)

    async def start(d: Deployment, request: UpstreamRequest) -> Opened:
        return await _first_events(state, request, d, None, "")

    return await walk(
        state,
        ctx,
        candidates,
        start,
        lambda d: {**ctx.body, "model": d.model},
        retry_after=retry_after,
    )


class Relay:
    """Sends one client stream to the end, rescuing it across deployments when it breaks.

    Events that arrived together leave together: they are collected in `_out` and sent in
    one write once the adapter holds no further event, so a burst costs one write, not
    one per event.
    """

    def __init__(self, state: GatewayState, ctx: RequestContext, send: Send) -> None:
        self.state = state
        self.ctx = ctx
        self.send = send
        self.delivered = Delivered()
        self.served_by: list[str] = []
        self._out: list[bytes] = []
        # A client that did not ask for usage gets no usage-only chunk (the gateway may ask
        # the vendor for one, to count tokens): OpenAI's stream has none then either.
        self._usage_chunks = wants_usage(ctx.body)

    async def run(self, current: Success[Opened]) -> bool:
        """True when the client got a complete stream, False when it ended with an error.
        The stream's last bytes stay in `tail()`, to go out with the end of the body."""
        while True:
            failure = await self._pump(current)
            if failure is None:
                return True
            await self._flush()  # all relayed so far, before a rescue that may take a while
            rescued = await self._rescue(failure) if self._may_rescue() else None
            if rescued is None:
                self._out.append(_error_event(failure, self.ctx))
                return False
            current = rescued

    async def abandon(self, current: Success[Opened]) -> None:
        """Release a stream cancelled before `run` took it over (`run` releases its own)."""
        if not self.served_by:
            current.finish(neutral=True)
            await current.value.stream.aclose()

    def tail(self) -> bytes:
        """What is relayed but not sent yet, for the caller to send with the body's end."""
        out, self._out = self._out, []
        return b"".join(out)

    async def _flush(self) -> None:
        if self._out:
            await self.send(self.tail())

    async def _pump(self, current: Success[Opened]) -> UpstreamError | None:
        """Relay until the stream ends; the failure that broke it, or None when complete."""
        opened = current.value
        self.served_by.append(current.deployment.id)
        failure: UpstreamError | None = None
        try:
            for chunk, raw in opened.held:
                self._relay(chunk, raw)
            if not opened.more:
                await self._flush()
            async for event in opened.events:
                if event.data is None:
                    self._out.append(DONE)
                    current.finish()
                    await opened.stream.aclose()  # hands the connection back for reuse
                    return None
                if "error" in event.data:
                    raise UpstreamProtocolError(_vendor_stream_error(event.data))
                self._forward(event, opened)
                if not event.more:
                    await self._flush()
            if self.delivered.finish_reason is not None:
                self._out.append(DONE)  # the vendor forgot [DONE]: finalise promptly
                current.finish()
                await opened.stream.aclose()
                return None
            failure = UpstreamStreamCut("stream ended without a finish reason or [DONE]")
        except UpstreamError as error:
            failure = error
        except BaseException:
            current.finish(neutral=True)  # the client left; not the vendor's fault
            await opened.stream.aclose()
            raise
        await opened.stream.aclose()
        current.finish(failed=True)
        self.ctx.failed.add(current.deployment.id)
        self.ctx.note(
            current.deployment,
            "failover",
            _reason(failure),
            failure.status,
            failure.message,
            self.state.clock() - current.started,
        )
        return failure

    def _relay(self, chunk: dict[str, Any], raw: bytes) -> None:
        self.delivered.observe(chunk)
        if not self._usage_chunks and chunk.get("usage") and not chunk.get("choices"):
            return
        self._out.append(raw)

    def _forward(self, event: StreamEvent, opened: Opened) -> None:
        chunk = event.data
        assert chunk is not None
        if opened.splicer is not None:
            spliced = opened.splicer.feed(chunk)
            if spliced is not None:
                self._relay(spliced, _encode(spliced))
        elif opened.continuing:
            chunk = rewrite(chunk, self.delivered.chunk_id)
            self._relay(chunk, _encode(chunk))
        else:
            self._relay(chunk, event.raw)

    def _may_rescue(self) -> bool:
        body = self.ctx.body
        return self.ctx.route.config.stream_rescue and body.get("n", 1) in (1, None)

    async def _rescue(self, failure: UpstreamError) -> Success[Opened] | None:
        state, ctx = self.state, self.ctx
        now = state.clock()
        # A long answer may outlive the request deadline; the rescue gets a window of its own.
        ctx.deadline = max(ctx.deadline, now + ctx.route.config.timeout)
        candidates = plan(ctx.route, state, state.rng, now).candidates
        delivered = self.delivered

        async def start(d: Deployment, request: UpstreamRequest) -> Opened:
            strategies = ctx.snapshot.config.providers[d.provider].rescue_strategies
            if "continuation" in strategies and not delivered.tool_calls and delivered.content:
                try:
                    cont = _with_body(request, continuation_body(request.body, delivered))
                    return await _first_events(state, cont, d, None, delivered.chunk_id)
                except UpstreamStatusError as error:
                    if "splice" not in strategies or (error.status or 0) >= 500:
                        raise
                    # a prefill rejection: replay instead, and never report the rejection
            if "splice" not in strategies and delivered.started:
                raise UpstreamStreamCut("no rescue strategy fits this deployment")
            return await _first_events(state, request, d, Splicer(delivered), "")

        try:
            return await walk(
                state, ctx, candidates, start, lambda d: {**ctx.body, "model": d.model}, rescue=True
            )
        except (NoDeploymentSucceeded, VendorRejected):
            return None


def _with_body(request: UpstreamRequest, body: dict[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(
        body,
        request.endpoint,
        request.connect_timeout,
        request.first_token_timeout,
        request.idle_timeout,
        request.extra_headers,
    )


def _reason(error: UpstreamError) -> str:
    if isinstance(error, UpstreamTimeout):
        return f"timeout_{error.phase}"
    if isinstance(error, UpstreamStatusError):
        return f"status_{error.status}"
    return error.reason


def _error_event(failure: UpstreamError, ctx: RequestContext) -> bytes:
    first = next(
        (
            a
            for a in ctx.attempts
            if a.outcome == "failover" and a.reason not in ("replay_diverged",)
        ),
        None,
    )
    where = f" from {first.deployment}" if first else ""
    cause = (
        f"{first.reason}: {first.message}" if first else f"{_reason(failure)}: {failure.message}"
    )
    tried = ", ".join(
        f"{a.deployment} ({a.reason})" for a in ctx.attempts if a.outcome != "skipped"
    )
    body = {
        "error": {
            "message": f"The stream{where} was interrupted ({cause}) and could not be "
            f"completed on another deployment. Attempts: {tried}.",
            "type": "upstream_error",
            "code": "stream_interrupted",
            "param": None,
        }
    }
    return _encode(body)
