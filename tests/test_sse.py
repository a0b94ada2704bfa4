"""The incremental SSE parser: tables of byte chunks in, payloads out."""

from __future__ import annotations

import pytest

from gateway.providers.sse import SSEParser, encode_event


def parse(chunks: list[bytes]) -> list[bytes]:
    parser = SSEParser()
    out: list[bytes] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.finish()


CASES = [
    ("one event", [b'data: {"a":1}\n\n'], [b'{"a":1}']),
    ("two events in one read", [b"data: 1\n\ndata: 2\n\n"], [b"1", b"2"]),
    ("no space after colon", [b"data:1\n\n"], [b"1"]),
    ("only one leading space removed", [b"data:  1\n\n"], [b" 1"]),
    ("split inside the payload", [b'data: {"a"', b":1}\n\n"], [b'{"a":1}']),
    ("split inside the prefix", [b"da", b"ta: 1\n", b"\n"], [b"1"]),
    ("split between the two newlines", [b"data: 1\n", b"\ndata: 2\n\n"], [b"1", b"2"]),
    ("CRLF line endings", [b"data: 1\r\n\r\ndata: 2\r\n\r\n"], [b"1", b"2"]),
    ("CRLF split between CR and LF", [b"data: 1\r", b"\n\r", b"\ndata: 2\r\n\r\n"], [b"1", b"2"]),
    ("lone CR line endings", [b"data: 1\r\rdata: 2\r\r"], [b"1", b"2"]),
    ("comment lines skipped", [b": keep-alive\n\ndata: 1\n\n: ping\n\n"], [b"1"]),
    ("comment inside an event", [b": hi\ndata: 1\n\n"], [b"1"]),
    ("event and id fields ignored", [b"event: message\nid: 7\ndata: 1\nretry: 5\n\n"], [b"1"]),
    ("multi-line data joined with LF", [b"data: a\ndata: b\n\n"], [b"a\nb"]),
    ("bare data field is empty", [b"data\ndata: x\n\n"], [b"\nx"]),
    ("empty data not dispatched", [b"data:\n\ndata: \n\n"], []),
    ("extra blank lines", [b"\n\n\ndata: 1\n\n\n\n"], [b"1"]),
    ("unknown field only", [b"foo: bar\n\n"], []),
    ("field name must match exactly", [b"datum: 1\n\n"], []),
    ("DONE sentinel is a payload", [b"data: [DONE]\n\n"], [b"[DONE]"]),
    ("EOF: event missing its blank line", [b"data: [DONE]\n"], [b"[DONE]"]),
    ("EOF: truncated last line dropped", [b'data: 1\n\ndata: {"a'], [b"1"]),
    ("empty reads are harmless", [b"data: 1\r", b"", b"\n\n"], [b"1"]),
]


@pytest.mark.parametrize(("chunks", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse(chunks: list[bytes], expected: list[bytes]) -> None:
    assert parse(chunks) == expected


@pytest.mark.parametrize(("chunks", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_byte_at_a_time_gives_the_same_events(chunks: list[bytes], expected: list[bytes]) -> None:
    data = b"".join(chunks)
    assert parse([data[i : i + 1] for i in range(len(data))]) == expected


def test_events_are_returned_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n") == []
    assert parser.feed(b"\ndata: 2") == [b"1"]
    assert parser.feed(b"\n\n") == [b"2"]
    assert parser.finish() == []


def test_trailing_cr_completes_the_event_without_waiting_for_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\r\n\r") == [b"1"]
    assert parser.feed(b"\ndata: 2\r\n\r\n") == [b"2"]


ENCODE_CASES = [
    (b'{"a":1}', b'data: {"a":1}\n\n'),
    (b"[DONE]", b"data: [DONE]\n\n"),
    (b"a\nb", b"data: a\ndata: b\n\n"),
]


@pytest.mark.parametrize(("payload", "raw"), ENCODE_CASES)
def test_encode_event(payload: bytes, raw: bytes) -> None:
    assert encode_event(payload) == raw
    assert parse([raw]) == [payload]
