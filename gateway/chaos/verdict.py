"""Pure judging of one answer: complete, a clean error, or something a client must never see.

A non-streaming answer is complete when its text is exactly the simulator's answer to the
prompt. A stream is complete when it ends with `[DONE]` and its deltas join to that text;
it ends cleanly with an OpenAI-style error event. Anything else is lost work: a stream
that just stops (silent truncation), a wrong text, an error that is not in the OpenAI
format, a broken connection or a hang.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson


class Verdict(StrEnum):
    COMPLETE = "complete"
    CLEAN_ERROR = "clean_error"  # OpenAI error JSON, or a stream's error event
    TRUNCATED = "truncated"  # a stream ended with neither [DONE] nor an error event
    CORRUPT = "corrupt"  # a 200 with the wrong text, or events after [DONE]
    UNCLEAN_ERROR = "unclean_error"  # an error body that is not OpenAI's error format
    BROKEN = "broken"  # the connection to the gateway failed
    HANG = "hang"  # no end within the request timeout

    @property
    def clean(self) -> bool:
        """The request ended exactly once, with a complete answer or a clean error."""
        return self in (Verdict.COMPLETE, Verdict.CLEAN_ERROR)


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    detail: str = ""


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def error_message(data: Any) -> str | None:
    """The message of an OpenAI-format error object, or None if `data` is not one."""
    if not isinstance(data, dict) or set(data) - {"error"}:
        return None
    error = data.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    if not {"type", "code"} <= set(error):
        return None
    return str(error["message"])


def judge_error(status: int, body: bytes) -> Judgement:
    message = error_message(_loads(body))
    if message is None:
        return Judgement(Verdict.UNCLEAN_ERROR, f"HTTP {status}: {body[:120]!r}")
    return Judgement(Verdict.CLEAN_ERROR, f"HTTP {status}: {message[:160]}")


def judge_completion(status: int, body: bytes, expected: str) -> Judgement:
    if status != 200:
        return judge_error(status, body)
    data = _loads(body)
    try:
        text = data["choices"][0]["message"]["content"]
    except (TypeError, KeyError, IndexError):
        return Judgement(Verdict.CORRUPT, f"200 without a chat completion: {body[:120]!r}")
    if text != expected:
        return Judgement(Verdict.CORRUPT, f"wrong text: {str(text)[:80]!r}")
    return Judgement(Verdict.COMPLETE)


def judge_stream(payloads: Sequence[bytes], expected: str) -> Judgement:
    """`payloads` are the stream's `data:` payloads in order, read until the body ended."""
    text: list[str] = []
    for i, payload in enumerate(payloads):
        if payload == b"[DONE]":
            if i != len(payloads) - 1:
                return Judgement(Verdict.CORRUPT, "events after [DONE]")
            joined = "".join(text)
            if joined != expected:
                return Judgement(Verdict.CORRUPT, f"[DONE] after the wrong text: {joined[:80]!r}")
            return Judgement(Verdict.COMPLETE)
        data = _loads(payload)
        if isinstance(data, dict) and "error" in data:
            message = error_message(data)
            if message is None:
                return Judgement(Verdict.UNCLEAN_ERROR, f"error event: {payload[:120]!r}")
            if i != len(payloads) - 1:
                return Judgement(Verdict.CORRUPT, "events after an error event")
            return Judgement(Verdict.CLEAN_ERROR, f"error event: {message[:160]}")
        piece = _delta_text(data)
        if piece is None:
            return Judgement(Verdict.CORRUPT, f"not a chat.completion.chunk: {payload[:120]!r}")
        text.append(piece)
    return Judgement(
        Verdict.TRUNCATED, f"ended after {len(payloads)} events without [DONE] or an error"
    )


def _delta_text(data: Any) -> str | None:
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        return None
    if not data["choices"]:
        return ""  # the usage chunk
    choice = data["choices"][0]
    delta = choice.get("delta") if isinstance(choice, dict) else None
    if not isinstance(delta, dict):
        return None
    content = delta.get("content")
    return content if isinstance(content, str) else ""
