"""Pure stream bookkeeping for rescue: what the client already has, and how to join a new
upstream stream onto it without repeating or losing a character.

- `Delivered` records choice 0 of every chunk relayed: text, tool calls, finish reason.
- `continuation_body` builds the request that asks a prefill-capable vendor to go on.
- `Splicer` drops the part of a replayed answer the client already has, and raises
  `ReplayDiverged` the moment the replay says something else.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ReplayDiverged


@dataclass(slots=True)
class ToolCallSoFar:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(slots=True)
class Delivered:
    chunk_id: str = ""
    tool_calls: dict[int, ToolCallSoFar] = field(default_factory=dict)
    finish_reason: str | None = None
    chunks: int = 0
    usage: dict[str, Any] | None = None
    # Text pieces as relayed; joined on demand (a rescue), not once per chunk.
    pieces: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        if len(self.pieces) > 1:
            self.pieces[:] = ["".join(self.pieces)]
        return self.pieces[0] if self.pieces else ""

    def observe(self, chunk: dict[str, Any]) -> None:
        """Record one relayed chunk. Raises ValueError for a vendor error chunk."""
        if "error" in chunk:
            raise ValueError("vendor sent an error event mid-stream")
        self.chunks += 1
        if not self.chunk_id:
            self.chunk_id = str(chunk.get("id") or "")
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    self.pieces.append(content)
                calls = delta.get("tool_calls")
                if calls:
                    self._observe_calls(calls)
            finish = choice.get("finish_reason")
            if finish:
                self.finish_reason = finish

    def _observe_calls(self, calls: list[dict[str, Any]]) -> None:
        for call in calls:
            so_far = self.tool_calls.setdefault(call.get("index", 0), ToolCallSoFar())
            so_far.id = call.get("id") or so_far.id
            function = call.get("function") or {}
            so_far.name += function.get("name") or ""
            so_far.arguments += function.get("arguments") or ""

    @property
    def started(self) -> bool:
        return bool(self.pieces or self.tool_calls)


def meaningful(chunk: dict[str, Any]) -> bool:
    """Whether a chunk carries part of the answer (not just the opening role delta)."""
    if chunk.get("usage") and not chunk.get("choices"):
        return True
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or choice.get("finish_reason"):
            return True
    return False


def continuation_body(body: dict[str, Any], delivered: Delivered) -> dict[str, Any]:
    """The original request plus the delivered text as an assistant prefill."""
    messages = [*body.get("messages", ()), {"role": "assistant", "content": delivered.content}]
    return {**body, "messages": messages}


def rewrite(chunk: dict[str, Any], chunk_id: str) -> dict[str, Any]:
    """Make a rescue chunk look like the stream the client already holds."""
    out = dict(chunk)
    if chunk_id:
        out["id"] = chunk_id
    choices = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if "role" in delta:
            delta = {k: v for k, v in delta.items() if k != "role"}
            choice = {**choice, "delta": delta}
        choices.append(choice)
    out["choices"] = choices
    return out


class Splicer:
    """Feeds on a replay of the same request; emits only what follows the delivered part."""

    def __init__(self, delivered: Delivered) -> None:
        self._text_left = delivered.content
        self._calls_left = {i: copy.copy(c) for i, c in delivered.tool_calls.items()}
        self._delivered = delivered

    @property
    def caught_up(self) -> bool:
        calls_left = self._calls_left.values()
        return not self._text_left and not any(c.arguments or c.name for c in calls_left)

    def _consume(self, left: str, piece: str, what: str) -> tuple[str, str]:
        """(still to match, piece to emit) after matching `piece` against `left`."""
        if not left:
            return "", piece
        if len(piece) <= len(left):
            if not left.startswith(piece):
                raise ReplayDiverged(f"replay {what} differs from what was delivered")
            return left[len(piece) :], ""
        if not piece.startswith(left):
            raise ReplayDiverged(f"replay {what} differs from what was delivered")
        return "", piece[len(left) :]

    def feed(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk to relay (rewritten), or None while still inside the delivered part."""
        out_choices = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = dict(choice.get("delta") or {})
            delta.pop("role", None)
            if (text := delta.get("content")) is not None:
                self._text_left, delta["content"] = self._consume(self._text_left, text, "text")
                if not delta["content"]:
                    del delta["content"]
            if delta.get("tool_calls"):
                delta["tool_calls"] = self._feed_calls(delta["tool_calls"])
                if not delta["tool_calls"]:
                    del delta["tool_calls"]
            if choice.get("finish_reason") and not self.caught_up:
                raise ReplayDiverged("replay finished before reaching the delivered part")
            if delta or choice.get("finish_reason"):
                out_choices.append({**choice, "delta": delta})
        if not out_choices and not (chunk.get("usage") and not chunk.get("choices")):
            return None
        return {**chunk, "id": self._delivered.chunk_id or chunk.get("id"), "choices": out_choices}

    def _feed_calls(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for call in calls:
            index = call.get("index", 0)
            left = self._calls_left.get(index)
            function = dict(call.get("function") or {})
            if left is None:
                if self._text_left or any(c.arguments for c in self._calls_left.values()):
                    raise ReplayDiverged("replay started a new tool call too early")
                out.append(call)
                continue
            name_rest = ""
            if name := function.pop("name", None):
                left.name, name_rest = self._consume(left.name, name, "tool name")
            args = function.pop("arguments", "") or ""
            left.arguments, rest = self._consume(left.arguments, args, "tool arguments")
            emitted = {"name": name_rest, "arguments": rest}
            if name_rest or rest:
                out.append({"index": index, "function": {k: v for k, v in emitted.items() if v}})
        return out
