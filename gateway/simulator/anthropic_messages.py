"""`POST /v1/messages`: Anthropic Messages requests in, a `message` object or its SSE
event sequence out."""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from gateway.simulator.answers import split_chars, split_words
from gateway.simulator.anthropic_dialect import MALFORMED_EVENT, MESSAGE_STOP_EVENT, sse_event
from gateway.simulator.delivery import StreamPlan
from gateway.simulator.errors import ErrorReply, invalid_request
from gateway.simulator.exchange import Answer
from gateway.simulator.reply import Conversation, Reply, ToolMode, compose, refuse
from gateway.simulator.vendor import Vendor

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def answer_messages(vendor: Vendor, body: dict[str, Any]) -> Answer:
    conversation = parse(body)
    if isinstance(conversation, ErrorReply):
        return conversation
    spec = vendor.spec
    refusal = refuse(conversation, spec.reject_prefill, spec.context_window)
    if refusal is not None:
        return refusal
    reply = compose(conversation, spec.answer_salt)
    model = str(body["model"])
    if body.get("stream") is True:
        return plan_stream(model, reply, spec.chunks)
    return orjson.dumps(message(model, reply))


def parse(body: dict[str, Any]) -> Conversation | ErrorReply:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return invalid_request("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return invalid_request("max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return invalid_request("messages: Field required")
    if not all(isinstance(item, dict) for item in messages):
        return invalid_request("messages: each message must be an object")
    texts = [_text(item.get("content")) for item in messages]
    last = messages[-1]
    role = last.get("role")
    prompt = next(
        (
            text
            for item, text in zip(reversed(messages), reversed(texts), strict=True)
            if item.get("role") == "user"
        ),
        "",
    )
    tools, mode, forced = _tools(body)
    return Conversation(
        prompt=prompt,
        prefill=texts[-1] if role == "assistant" and not _has(last, "tool_use") else None,
        prompt_chars=sum(map(len, texts)) + len(_text(body.get("system"))),
        tools=tools,
        tool_mode=mode,
        forced_tool=forced,
        after_tool_result=role == "user" and _has(last, "tool_result"),
        max_words=max_tokens,
    )


def message(model: str, reply: Reply) -> dict[str, Any]:
    call = reply.tool_call
    content: list[dict[str, Any]] = []
    if call is not None:
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{call.tag}",
                "name": call.name,
                "input": orjson.loads(call.arguments),
            }
        )
    elif reply.text:
        content.append({"type": "text", "text": reply.text})
    return {
        **_envelope(model, reply.prompt_tokens, reply.completion_tokens),
        "content": content,
        "stop_reason": STOP_REASONS[reply.finish],
    }


def plan_stream(model: str, reply: Reply, chunks: int) -> StreamPlan:
    start = {**_envelope(model, reply.prompt_tokens, 1), "content": [], "stop_reason": None}
    call = reply.tool_call
    if call is None:
        block: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in split_words(reply.text, chunks)]
    else:
        block = {"type": "tool_use", "id": f"toolu_{call.tag}", "name": call.name, "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in split_chars(call.arguments, chunks)
        ]
    events = [
        _event("message_start", {"type": "message_start", "message": start}),
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        _event("ping", {"type": "ping"}),
        *(
            _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
            for d in deltas
        ),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": STOP_REASONS[reply.finish], "stop_sequence": None},
                "usage": {"output_tokens": reply.completion_tokens},
            },
        ),
    ]
    return StreamPlan(tuple(events), MESSAGE_STOP_EVENT, MALFORMED_EVENT)


def _envelope(model: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": model,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return sse_event(name, orjson.dumps(data))


def _text(content: Any) -> str:
    """Text of a string or of a list of blocks (tool results included)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_result":
            parts.append(_text(block.get("content")))
    return "".join(parts)


def _has(item: dict[str, Any], block_type: str) -> bool:
    content = item.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == block_type for block in content
    )


def _tools(body: dict[str, Any]) -> tuple[tuple[str, ...], ToolMode, str | None]:
    tools = body.get("tools")
    names: tuple[str, ...] = ()
    if isinstance(tools, list):
        names = tuple(str(t["name"]) for t in tools if isinstance(t, dict) and "name" in t)
    choice = body.get("tool_choice")
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "none":
        return names, "none", None
    if kind == "any":
        return names, "required", None
    if kind == "tool" and isinstance(choice, dict) and names and "name" in choice:
        return names, "required", str(choice["name"])
    return names, "auto", None
