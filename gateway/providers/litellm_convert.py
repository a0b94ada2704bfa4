"""Pure conversion of litellm's response objects into plain OpenAI-format dicts.

`model` loses litellm's provider prefix (`anthropic/claude-x` -> `claude-x`): the body's
model is the vendor model that answered.
"""

from __future__ import annotations

from typing import Any

_USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
_USAGE_DETAILS = (
    ("prompt_tokens_details", "cached_tokens"),
    ("completion_tokens_details", "reasoning_tokens"),
)


def _strip(model: Any, kind: str) -> str:
    return str(model or "").removeprefix(f"{kind}/")


def _usage(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    out: dict[str, Any] = {key: getattr(usage, key, 0) or 0 for key in _USAGE_COUNTS}
    for details, key in _USAGE_DETAILS:
        value = getattr(getattr(usage, details, None), key, None)
        if value:
            out[details] = {key: value}
    return out


def _tool_call(call: Any, streaming: bool) -> dict[str, Any]:
    """A whole tool call, or a stream's piece of one (id and name only in the first)."""
    out: dict[str, Any] = {"index": getattr(call, "index", 0) or 0} if streaming else {}
    if call.id is not None or not streaming:
        out.update(id=call.id, type="function")
    name, arguments = call.function.name, call.function.arguments
    out["function"] = {} if name is None else {"name": name}
    if arguments is not None or not streaming:
        out["function"]["arguments"] = arguments or ""
    return out


def completion_to_openai(response: Any, kind: str) -> dict[str, Any]:
    """A litellm `ModelResponse` as a plain OpenAI `chat.completion` dict."""
    choices = []
    for choice in response.choices:
        message = choice.message
        out: dict[str, Any] = {"role": message.role or "assistant", "content": message.content}
        if message.tool_calls:
            out["tool_calls"] = [_tool_call(call, streaming=False) for call in message.tool_calls]
        reasoning = getattr(message, "reasoning_content", None)
        if reasoning:
            out["reasoning_content"] = reasoning
        choices.append(
            {
                "index": choice.index,
                "message": out,
                "finish_reason": choice.finish_reason,
                "logprobs": None,
            }
        )
    if not choices:
        raise ValueError("no choices")
    data: dict[str, Any] = {
        "id": response.id,
        "object": "chat.completion",
        "created": response.created,
        "model": _strip(response.model, kind),
        "choices": choices,
    }
    usage = _usage(getattr(response, "usage", None))
    if usage is not None:
        data["usage"] = usage
    return data


def chunk_to_openai(chunk: Any, kind: str, include_usage: bool) -> list[dict[str, Any]]:
    """One litellm stream chunk as zero, one or two OpenAI chunks (usage goes on its own)."""
    head = {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": _strip(chunk.model, kind),
    }
    choices = []
    for choice in chunk.choices:
        delta = choice.delta
        out: dict[str, Any] = {}
        if getattr(delta, "role", None):
            out["role"] = delta.role
        calls = [_tool_call(c, streaming=True) for c in getattr(delta, "tool_calls", None) or ()]
        content = getattr(delta, "content", None)
        if isinstance(content, str) and (content or not calls):
            out["content"] = content
        if calls:
            out["tool_calls"] = calls
        reasoning = getattr(delta, "reasoning_content", None)
        if reasoning:
            out["reasoning_content"] = reasoning
        if out or choice.finish_reason:
            choices.append(
                {"index": choice.index, "delta": out, "finish_reason": choice.finish_reason}
            )
    usage = _usage(getattr(chunk, "usage", None))
    chunks = [{**head, "choices": choices}] if choices else []
    if usage is not None:
        if include_usage:
            chunks.append({**head, "choices": [], "usage": usage})
        elif chunks:
            chunks[0]["usage"] = usage
    return chunks


def embedding_to_openai(response: Any, kind: str) -> dict[str, Any]:
    """A litellm `EmbeddingResponse` as a plain OpenAI embeddings list."""
    items = []
    for i, item in enumerate(response.data):
        if not isinstance(item, dict):
            item = {"index": getattr(item, "index", i), "embedding": item.embedding}
        items.append(
            {"object": "embedding", "index": item.get("index", i), "embedding": item["embedding"]}
        )
    if not items:
        raise ValueError("no embeddings")
    usage = _usage(getattr(response, "usage", None)) or {}
    usage.pop("completion_tokens", None)
    return {"object": "list", "data": items, "model": _strip(response.model, kind), "usage": usage}
