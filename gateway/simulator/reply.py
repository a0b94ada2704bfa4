"""What the simulated model says: a parsed conversation in, a `Reply` out (pure).

Both wire dialects parse their request bodies into a `Conversation`; `compose` decides
the answer: a deterministic text (see `answers.py`), its continuation after an assistant
prefill, a JSON object in JSON mode, or a call to one of the request's tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from gateway.simulator import answers
from gateway.simulator.errors import ErrorReply, context_length

ToolMode = Literal["none", "auto", "required"]
Finish = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True, slots=True)
class Conversation:
    """The parts of a chat request the simulated model reacts to.

    prompt             text of the last user message
    prefill            text of a trailing assistant message, if the conversation ends with one
    prompt_chars       characters of all message text (for the token estimate)
    tools              names of the offered tools, in order
    tool_mode          "none", "auto" or "required"
    forced_tool        the tool the request names in its tool choice
    after_tool_result  the conversation ends with a tool result
    max_words          the request's output limit (one word per token)
    json_mode          the request asks for a JSON object
    """

    prompt: str
    prefill: str | None = None
    prompt_chars: int = 0
    tools: tuple[str, ...] = ()
    tool_mode: ToolMode = "auto"
    forced_tool: str | None = None
    after_tool_result: bool = False
    max_words: int | None = None
    json_mode: bool = False

    @property
    def prompt_tokens(self) -> int:
        return answers.estimate_tokens(self.prompt_chars)


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    tag: str  # deterministic hex; dialects prefix it ("call_", "toolu_")
    arguments: str  # a JSON object, as text


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    tool_call: ToolCall | None
    finish: Finish
    prompt_tokens: int
    completion_tokens: int


def refuse(
    conversation: Conversation, reject_prefill: bool, context_window: int | None
) -> ErrorReply | None:
    """The error a vendor with these limits gives this conversation, if any."""
    if reject_prefill and conversation.prefill is not None:
        return ErrorReply(400, "prefill", param="messages")
    tokens = conversation.prompt_tokens
    if context_window is not None and tokens > context_window:
        return context_length(tokens, context_window)
    return None


def compose(conversation: Conversation, salt: str) -> Reply:
    tool = _chosen_tool(conversation)
    if tool is not None:
        call = ToolCall(
            name=tool,
            tag=answers.digest_hex(f"{tool}\0{conversation.prompt}"),
            arguments=orjson.dumps({"query": conversation.prompt}).decode(),
        )
        return Reply(
            text="",
            tool_call=call,
            finish="tool_calls",
            prompt_tokens=conversation.prompt_tokens,
            completion_tokens=answers.estimate_tokens(len(call.arguments)),
        )
    text = _full_text(conversation, salt)
    finish: Finish = "stop"
    if conversation.max_words is not None:
        text, cut = answers.take_words(text, conversation.max_words)
        finish = "length" if cut else "stop"
    return Reply(
        text=text,
        tool_call=None,
        finish=finish,
        prompt_tokens=conversation.prompt_tokens,
        completion_tokens=answers.count_words(text),
    )


def _full_text(conversation: Conversation, salt: str) -> str:
    text = answers.expected_answer(conversation.prompt, salt)
    if conversation.json_mode:
        text = orjson.dumps({"answer": text}).decode()
    prefill = conversation.prefill
    if prefill is not None and text.startswith(prefill):
        return text[len(prefill) :]
    return text


def _chosen_tool(conversation: Conversation) -> str | None:
    if conversation.prefill is not None or conversation.tool_mode == "none":
        return None
    if conversation.forced_tool is not None:
        return conversation.forced_tool
    if not conversation.tools:
        return None
    # An agent loop gets text once its tool has answered, unless a call is required.
    if conversation.tool_mode == "auto" and conversation.after_tool_result:
        return None
    return conversation.tools[0]
