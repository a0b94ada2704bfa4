"""Stream rescue bookkeeping: what was delivered, and splicing a replay onto it."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from gateway.errors import ReplayDiverged
from gateway.splice import Delivered, Splicer, continuation_body, meaningful, rewrite

ANSWER = "The quick brown fox jumps over the lazy dog. Ünïcödé too: 日本語!"


def chunk(
    content: str | None = None,
    *,
    role: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish: str | None = None,
    id: str = "chatcmpl-replay",
    index: int = 0,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    choice = {"index": index, "delta": delta, "finish_reason": finish}
    return {"id": id, "object": "chat.completion.chunk", "model": "m", "choices": [choice]}


def usage_chunk(id: str = "chatcmpl-replay") -> dict[str, Any]:
    return {"id": id, "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}  # fmt: skip


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def call(index: int, *, id: str | None = None, name: str | None = None,
         arguments: str | None = None) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"index": index}
    if id is not None:
        out["id"] = id
        out["type"] = "function"
    function = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    out["function"] = function
    return out


def deliver(chunks: list[dict[str, Any]]) -> Delivered:
    delivered = Delivered()
    for c in chunks:
        delivered.observe(c)
    return delivered


def delivered_text(prefix: str, size: int) -> Delivered:
    first = [chunk("", role="assistant", id="chatcmpl-original")]
    return deliver(first + [chunk(p, id="chatcmpl-original") for p in pieces(prefix, size)])


def replay_text(text: str, size: int) -> list[dict[str, Any]]:
    body = [chunk(p) for p in pieces(text, size)]
    return [chunk("", role="assistant"), *body, chunk(finish="stop"), usage_chunk()]


def splice(splicer: Splicer, replay: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [out for c in replay if (out := splicer.feed(c)) is not None]


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(ch["delta"].get("content", "") for c in chunks for ch in c["choices"])


# delivered length x delivery chunk size x replay chunk size
SPLICE_CASES = list(itertools.product([0, 1, 7, 10, 23, 24, len(ANSWER) - 1, len(ANSWER)],
                                      [1, 3, 10], [1, 4, 10, 100]))  # fmt: skip


@pytest.mark.parametrize(("cut", "sent_size", "replay_size"), SPLICE_CASES)
def test_splice_emits_exactly_the_remainder(cut: int, sent_size: int, replay_size: int) -> None:
    delivered = delivered_text(ANSWER[:cut], sent_size)
    out = splice(Splicer(delivered), replay_text(ANSWER, replay_size))
    assert delivered.content + text_of(out) == ANSWER
    assert all(c["id"] == "chatcmpl-original" for c in out)
    assert all("role" not in ch["delta"] for c in out for ch in c["choices"])
    finishes = [ch["finish_reason"] for c in out for ch in c["choices"] if ch["finish_reason"]]
    assert finishes == ["stop"]
    assert out[-1].get("usage")  # the usage chunk passes through
    for c in out:  # relaying the emitted chunks completes what the client holds
        delivered.observe(c)
    assert (delivered.content, delivered.finish_reason) == (ANSWER, "stop")


def test_nothing_is_emitted_while_inside_the_delivered_part() -> None:
    splicer = Splicer(delivered_text("Hello there", 4))
    assert splicer.feed(chunk("", role="assistant")) is None
    assert splicer.feed(chunk("Hel")) is None
    assert not splicer.caught_up
    assert splicer.feed(chunk("lo there")) is None
    assert splicer.caught_up
    out = splicer.feed(chunk(", friend"))
    assert out is not None and text_of([out]) == ", friend"


DIVERGE_CASES = [
    ("different word inside the delivered part", "Hello there", ["Hello", " where"]),
    ("different first character", "Hello there", ["J"]),
    ("replay chunk runs past the delivered part differently", "Hello", ["Help me"]),
    ("replay finishes early", "Hello there", ["Hello", None]),
    ("replay finishes with nothing said", "Hi", [None]),
    ("different case", "Hello", ["hello"]),
]


@pytest.mark.parametrize(("sent", "replay"), [c[1:] for c in DIVERGE_CASES],
                         ids=[c[0] for c in DIVERGE_CASES])  # fmt: skip
def test_divergence_raises(sent: str, replay: list[str | None]) -> None:
    splicer = Splicer(delivered_text(sent, 3))
    chunks = [chunk(p) if p is not None else chunk(finish="stop") for p in replay]
    with pytest.raises(ReplayDiverged):
        for c in chunks:
            splicer.feed(c)


def test_replay_diverged_is_not_a_breaker_failure_reason() -> None:
    splicer = Splicer(delivered_text("abc", 3))
    with pytest.raises(ReplayDiverged) as diverged:
        splicer.feed(chunk("x"))
    assert diverged.value.reason == "replay_diverged"


WEATHER_ARGS = '{"city": "Paris", "unit": "celsius"}'


def delivered_tool_call(name_parts: list[str], args_cut: int) -> Delivered:
    first, *rest = name_parts
    chunks = [chunk(role="assistant", id="orig",
                    tool_calls=[call(0, id="call_orig", name=first, arguments="")])]  # fmt: skip
    chunks += [chunk(id="orig", tool_calls=[call(0, name=p)]) for p in rest]
    chunks += [chunk(id="orig", tool_calls=[call(0, arguments=p)])
               for p in pieces(WEATHER_ARGS[:args_cut], 5)]  # fmt: skip
    return deliver(chunks)


def replay_tool_call(size: int) -> list[dict[str, Any]]:
    head = chunk(role="assistant", tool_calls=[call(0, id="call_new", name="get_weather",
                                                    arguments="")])  # fmt: skip
    body = [chunk(tool_calls=[call(0, arguments=p)]) for p in pieces(WEATHER_ARGS, size)]
    return [head, *body, chunk(finish="tool_calls")]


def arguments_of(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(tc["function"].get("arguments", "") for c in chunks for ch in c["choices"]
                   for tc in ch["delta"].get("tool_calls", ()) if tc["index"] == index)  # fmt: skip


@pytest.mark.parametrize("cut", [0, 1, 9, 17, len(WEATHER_ARGS) - 1, len(WEATHER_ARGS)])
@pytest.mark.parametrize("replay_size", [1, 6, 50])
def test_tool_call_arguments_spliced(cut: int, replay_size: int) -> None:
    delivered = delivered_tool_call(["get_weather"], cut)
    out = splice(Splicer(delivered), replay_tool_call(replay_size))
    assert delivered.tool_calls[0].arguments + arguments_of(out) == WEATHER_ARGS
    calls = [tc for c in out for ch in c["choices"] for tc in ch["delta"].get("tool_calls", ())]
    assert all("id" not in tc and "name" not in tc["function"] for tc in calls)
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["id"] == "orig" for c in out)
    for c in out:
        delivered.observe(c)
    so_far = delivered.tool_calls[0]
    assert (so_far.id, so_far.name, so_far.arguments) == ("call_orig", "get_weather", WEATHER_ARGS)


def test_tool_name_delivered_in_part_is_completed() -> None:
    delivered = delivered_tool_call(["get_", "wea"], 0)
    out = splice(Splicer(delivered), replay_tool_call(50))
    for c in out:
        delivered.observe(c)
    so_far = delivered.tool_calls[0]
    assert (so_far.name, so_far.arguments) == ("get_weather", WEATHER_ARGS)


def test_new_tool_call_after_the_delivered_ones_passes_through() -> None:
    delivered = delivered_tool_call(["get_weather"], len(WEATHER_ARGS))
    second = call(1, id="call_2", name="get_time", arguments='{"tz": "CET"}')
    replay = [*replay_tool_call(10)[:-1], chunk(tool_calls=[second]), chunk(finish="tool_calls")]
    out = splice(Splicer(delivered), replay)
    new_calls = [tc for c in out for ch in c["choices"] for tc in ch["delta"].get("tool_calls", ())]
    assert new_calls == [second]


TOOL_DIVERGE_CASES = [
    ("different arguments",
     [chunk(tool_calls=[call(0, id="c", name="get_weather", arguments='{"city": "Rome"}')])]),
    ("different tool name",
     [chunk(tool_calls=[call(0, id="c", name="get_time", arguments="")])]),
    ("a new tool call before the delivered one is complete",
     [chunk(tool_calls=[call(1, id="c", name="other", arguments="{}")])]),
    ("finishes before the delivered arguments",
     [chunk(tool_calls=[call(0, id="c", name="get_weather", arguments='{"ci')]),
      chunk(finish="tool_calls")]),
    ("answers in text instead of calling the tool",
     [chunk("Sure"), chunk(finish="stop")]),
]  # fmt: skip


@pytest.mark.parametrize("replay", [c[1] for c in TOOL_DIVERGE_CASES],
                         ids=[c[0] for c in TOOL_DIVERGE_CASES])  # fmt: skip
def test_tool_call_divergence_raises(replay: list[dict[str, Any]]) -> None:
    splicer = Splicer(delivered_tool_call(["get_weather"], 17))
    with pytest.raises(ReplayDiverged):
        splice(splicer, replay)


def test_text_then_tool_call() -> None:
    sent = [
        chunk("Let me check.", role="assistant", id="orig"),
        chunk(id="orig", tool_calls=[call(0, id="call_1", name="f", arguments='{"a"')]),
    ]
    delivered = deliver(sent)
    replay = [chunk("Let me"), chunk(" check."),
              chunk(tool_calls=[call(0, id="call_9", name="f", arguments='{"a": 1}')]),
              chunk(finish="tool_calls")]  # fmt: skip
    out = splice(Splicer(delivered), replay)
    assert text_of(out) == ""
    assert arguments_of(out) == ": 1}"


def test_other_choices_are_dropped() -> None:
    splicer = Splicer(delivered_text("ab", 1))
    assert splicer.feed(chunk("zzz", index=1)) is None
    out = splicer.feed(chunk("abc"))
    assert out is not None and [ch["index"] for ch in out["choices"]] == [0]


def test_feed_does_not_mutate_the_replayed_chunk() -> None:
    splicer = Splicer(delivered_text("Hello", 5))
    original = chunk("Hello world", role="assistant")
    kept = copy.deepcopy(original)
    splicer.feed(original)
    assert original == kept


REWRITE_CASES = [
    ("role removed, id rewritten",
     chunk("Hi", role="assistant", id="x"), "orig",
     {"id": "orig", "delta": {"content": "Hi"}}),
    ("role-only delta becomes empty",
     chunk(role="assistant", id="x"), "orig",
     {"id": "orig", "delta": {}}),
    ("no id known yet: the chunk's own id stays",
     chunk("Hi", id="x"), "",
     {"id": "x", "delta": {"content": "Hi"}}),
    ("finish reason kept",
     chunk(finish="length", id="x"), "orig",
     {"id": "orig", "delta": {}, "finish_reason": "length"}),
]  # fmt: skip


@pytest.mark.parametrize(("source", "chunk_id", "expected"), [c[1:] for c in REWRITE_CASES],
                         ids=[c[0] for c in REWRITE_CASES])  # fmt: skip
def test_rewrite(source: dict[str, Any], chunk_id: str, expected: dict[str, Any]) -> None:
    kept = copy.deepcopy(source)
    out = rewrite(source, chunk_id)
    assert source == kept  # the input is not modified
    assert out["id"] == expected["id"]
    assert out["choices"][0]["delta"] == expected["delta"]
    assert out["choices"][0]["finish_reason"] == expected.get("finish_reason")
    assert (out["object"], out["model"]) == ("chat.completion.chunk", "m")


def test_rewrite_usage_chunk() -> None:
    out = rewrite(usage_chunk("x"), "orig")
    assert (out["id"], out["choices"], out["usage"]["total_tokens"]) == ("orig", [], 8)


MEANINGFUL_CASES = [
    ("opening role delta", chunk("", role="assistant"), False),
    ("role with no content key", chunk(role="assistant"), False),
    ("empty content", chunk(""), False),
    ("content", chunk("a"), True),
    ("role and content together", chunk("a", role="assistant"), True),
    ("tool call", chunk(tool_calls=[call(0, id="c", name="f", arguments="")]), True),
    ("finish reason", chunk(finish="stop"), True),
    ("usage-only chunk", usage_chunk(), True),
    ("no choices, no usage", {"id": "x", "choices": []}, False),
]


@pytest.mark.parametrize(("source", "expected"), [c[1:] for c in MEANINGFUL_CASES],
                         ids=[c[0] for c in MEANINGFUL_CASES])  # fmt: skip
def test_meaningful(source: dict[str, Any], expected: bool) -> None:
    assert meaningful(source) is expected


def test_continuation_body_appends_the_delivered_text_as_prefill() -> None:
    body = {"model": "m", "stream": True, "temperature": 0.2,
            "messages": [{"role": "user", "content": "Tell me a story"}]}  # fmt: skip
    kept = copy.deepcopy(body)
    out = continuation_body(body, delivered_text("Once upon", 4))
    assert body == kept
    assert out["messages"] == [{"role": "user", "content": "Tell me a story"},
                               {"role": "assistant", "content": "Once upon"}]  # fmt: skip
    assert {k: v for k, v in out.items() if k != "messages"} == {
        "model": "m",
        "stream": True,
        "temperature": 0.2,
    }


def test_delivered_records_choice_zero() -> None:
    d = deliver([
        chunk("", role="assistant", id="first"),
        chunk("Hel", id="second"),
        chunk("other choice", index=1),
        chunk("lo", tool_calls=[call(0, id="c1", name="f", arguments='{"x"')]),
        chunk(tool_calls=[call(0, arguments=": 1}"), call(1, id="c2", name="g")]),
        chunk(finish="tool_calls"),
        usage_chunk(),
    ])  # fmt: skip
    assert (d.chunk_id, d.content, d.finish_reason, d.chunks) == ("first", "Hello", "tool_calls", 7)
    assert [(i, c.id, c.name, c.arguments) for i, c in d.tool_calls.items()] == [
        (0, "c1", "f", '{"x": 1}'),
        (1, "c2", "g", ""),
    ]
    assert d.started


STARTED_CASES = [
    ("nothing", [], False),
    ("only the role delta", [chunk("", role="assistant")], False),
    ("text", [chunk("a")], True),
    ("a tool call", [chunk(tool_calls=[call(0, id="c", name="f")])], True),
]


@pytest.mark.parametrize(("chunks", "started"), [c[1:] for c in STARTED_CASES],
                         ids=[c[0] for c in STARTED_CASES])  # fmt: skip
def test_delivered_started(chunks: list[dict[str, Any]], started: bool) -> None:
    assert deliver(chunks).started is started


def test_vendor_error_chunk_is_rejected() -> None:
    d = Delivered()
    with pytest.raises(ValueError, match="error"):
        d.observe({"error": {"message": "overloaded"}})
    assert d.chunks == 0
