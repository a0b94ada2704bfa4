"""Judging answers, pure: complete, clean error, or lost (truncated, corrupt, unclean)."""

from __future__ import annotations

import orjson
import pytest

from gateway.chaos.verdict import Verdict, error_message, judge_completion, judge_stream

EXPECTED = "Amber anchor apple."
ERROR = {"error": {"message": "all failed", "type": "upstream_error", "param": None, "code": "x"}}


def completion(text: object) -> bytes:
    return orjson.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    return orjson.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def role() -> bytes:
    return orjson.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})


USAGE = orjson.dumps({"choices": [], "usage": {"total_tokens": 3}})


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, completion(EXPECTED), Verdict.COMPLETE),
        (200, completion("Amber anchor."), Verdict.CORRUPT),
        (200, b'{"choices": []}', Verdict.CORRUPT),
        (200, b"not json", Verdict.CORRUPT),
        (503, orjson.dumps(ERROR), Verdict.CLEAN_ERROR),
        (429, orjson.dumps(ERROR), Verdict.CLEAN_ERROR),
        (502, b"<html>Bad Gateway</html>", Verdict.UNCLEAN_ERROR),
        (500, b'{"detail": "Internal Server Error"}', Verdict.UNCLEAN_ERROR),
        (400, b'{"error": "just a string"}', Verdict.UNCLEAN_ERROR),
    ],
)
def test_judge_completion(status: int, body: bytes, verdict: Verdict) -> None:
    assert judge_completion(status, body, EXPECTED).verdict is verdict


@pytest.mark.parametrize(
    ("payloads", "verdict"),
    [
        ([role(), chunk("Amber anchor"), chunk(" apple."), chunk(finish="stop"), b"[DONE]"],
         Verdict.COMPLETE),
        ([role(), chunk(EXPECTED), chunk(finish="stop"), USAGE, b"[DONE]"], Verdict.COMPLETE),
        ([role(), chunk("Amber anchor"), b"[DONE]"], Verdict.CORRUPT),  # [DONE] too early
        ([role(), chunk("Amber anchor"), chunk(" apple."), chunk(" apple."), b"[DONE]"],
         Verdict.CORRUPT),  # a splice that repeats text
        ([role(), chunk(EXPECTED), b"[DONE]", chunk("more")], Verdict.CORRUPT),
        ([role(), chunk("Amber"), orjson.dumps(ERROR)], Verdict.CLEAN_ERROR),
        ([orjson.dumps(ERROR)], Verdict.CLEAN_ERROR),
        ([role(), orjson.dumps(ERROR), chunk("x")], Verdict.CORRUPT),
        ([role(), b'{"error": "bare"}'], Verdict.UNCLEAN_ERROR),
        ([role(), chunk("Amber anchor")], Verdict.TRUNCATED),  # the silent truncation
        ([], Verdict.TRUNCATED),
        ([role(), b"{broken"], Verdict.CORRUPT),
    ],
)  # fmt: skip
def test_judge_stream(payloads: list[bytes], verdict: Verdict) -> None:
    assert judge_stream(payloads, EXPECTED).verdict is verdict


def test_only_complete_and_clean_errors_are_clean() -> None:
    assert {v for v in Verdict if v.clean} == {Verdict.COMPLETE, Verdict.CLEAN_ERROR}


def test_error_message_wants_the_openai_shape() -> None:
    assert error_message(ERROR) == "all failed"
    assert error_message({"error": {"message": "m"}}) is None  # no type/code
    assert error_message({**ERROR, "extra": 1}) is None
    assert error_message(["error"]) is None
