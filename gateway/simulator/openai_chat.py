"""`POST /v1/chat/completions`: OpenAI chat requests in, `chat.completion` JSON or
`chat.completion.chunk` SSE out."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from gateway.simulator.answers import split_chars, split_words
from gateway.simulator.delivery import StreamPlan
from gateway.simulator.errors import ErrorReply, invalid_request
from gateway.simulator.exchange import Answer
from gateway.simulator.openai_dialect import DONE_EVENT, MALFORMED_EVENT
from gateway.simulator.reply import Conversation, Reply, ToolMode, compose, refuse
from gateway.simulator.vendor import Vendor

FINGERPRINT = "fp_simulated"


def answer_chat(vendor: Vendor, body: dict[str, Any]) -> Answer:
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
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return plan_stream(model, reply, spec.chunks, include_usage)
    return orjson.dumps(completion(model, reply))


def parse(body: dict[str, Any]) -> Conversation | ErrorReply:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return invalid_request("You must provide a model parameter.", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return invalid_request("'messages' must be a non-empty array.", "messages")
    if not all(isinstance(message, dict) for message in messages):
        return invalid_request("Each message must be an object.", "messages")
    texts = [_text(message.get("content")) for message in messages]
    last = messages[-1]
    role = last.get("role")
    prompt = next(
        (
            text
            for message, text in zip(reversed(messages), reversed(texts), strict=True)
            if message.get("role") == "user"
        ),
        "",
    )
    tools, mode, forced = _tools(body)
    return Conversation(
        prompt=prompt,
        prefill=texts[-1] if role == "assistant" and not last.get("tool_calls") else None,
        prompt_chars=sum(map(len, texts)),
        tools=tools,
        tool_mode=mode,
        forced_tool=forced,
        after_tool_result=role == "tool",
        max_words=_limit(body),
        json_mode=_json_mode(body),
    )


def completion(model: str, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text,
        "refusal": None,
        "annotations": [],
    }
    call = reply.tool_call
    if call is not None:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{call.tag}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        ]
    return {
        "id": _new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}
        ],
        "usage": _usage(reply),
        "system_fingerprint": FINGERPRINT,
    }


def plan_stream(model: str, reply: Reply, chunks: int, include_usage: bool) -> StreamPlan:
    head = {
        "id": _new_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk: dict[str, Any] = {**head, "choices": [choice]}
        if include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    call = reply.tool_call
    if call is None:
        first = event({"role": "assistant", "content": "", "refusal": None})
        pieces = [event({"content": piece}) for piece in split_words(reply.text, chunks)]
    else:
        opening = {
            "index": 0,
            "id": f"call_{call.tag}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        first = event({"role": "assistant", "content": None, "tool_calls": [opening]})
        pieces = [
            event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in split_chars(call.arguments, chunks)
        ]
    events = [first, *pieces, event({}, reply.finish)]
    if include_usage:
        usage = {**head, "choices": [], "usage": _usage(reply)}
        events.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    return StreamPlan(tuple(events), DONE_EVENT, MALFORMED_EVENT)


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _new_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def _tools(body: dict[str, Any]) -> tuple[tuple[str, ...], ToolMode, str | None]:
    tools = body.get("tools")
    names: tuple[str, ...] = ()
    if isinstance(tools, list):
        names = tuple(
            str(tool["function"]["name"])
            for tool in tools
            if isinstance(tool, dict)
            and isinstance(tool.get("function"), dict)
            and "name" in tool["function"]
        )
    choice = body.get("tool_choice")
    if choice == "none":
        return names, "none", None
    if choice == "required":
        return names, "required", None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict) and names:
        name = choice["function"].get("name")
        return names, "required", str(name) if name is not None else None
    return names, "auto", None


def _limit(body: dict[str, Any]) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _json_mode(body: dict[str, Any]) -> bool:
    response_format = body.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )
