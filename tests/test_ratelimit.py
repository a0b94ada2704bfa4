"""Parsing the wait a vendor asks for after a 429: durations, dates, reset headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from gateway.ratelimit import parse_duration, requested_wait

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def http_date(seconds: float) -> str:
    return format_datetime(NOW + timedelta(seconds=seconds), usegmt=True)


def rfc3339(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


DURATION_CASES = [
    ("2", 2.0),
    ("0.5", 0.5),
    (" 7 ", 7.0),
    ("-3", 0.0),
    ("1s", 1.0),
    ("20ms", 0.02),
    ("6m0s", 360.0),
    ("1m30s", 90.0),
    ("1h2m3.5s", 3723.5),
    ("2h", 7200.0),
    ("1.5m", 90.0),
    ("0s", 0.0),
    ("1m 30s", None),
    ("soon", None),
    ("", None),
    ("10x", None),
    ("s", None),
    ("5s later", None),
]


@pytest.mark.parametrize(("text", "expected"), DURATION_CASES)
def test_parse_duration(text: str, expected: float | None) -> None:
    got = parse_duration(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


WAIT_CASES: list[tuple[str, dict[str, str], float | None]] = [
    ("nothing", {}, None),
    ("unrelated headers", {"content-type": "application/json"}, None),
    ("retry-after seconds", {"retry-after": "12"}, 12.0),
    ("retry-after fractional", {"retry-after": "0.25"}, 0.25),
    ("retry-after duration", {"retry-after": "1m30s"}, 90.0),
    ("retry-after HTTP date", {"retry-after": http_date(42)}, 42.0),
    ("retry-after HTTP date in the past", {"retry-after": http_date(-10)}, 0.0),
    ("retry-after RFC 3339", {"retry-after": rfc3339(8)}, 8.0),
    ("retry-after garbage", {"retry-after": "later, maybe"}, None),
    ("retry-after-ms", {"retry-after-ms": "1500"}, 1.5),
    ("retry-after-ms wins over retry-after", {"retry-after-ms": "200", "retry-after": "9"}, 0.2),
    ("bad retry-after-ms falls back", {"retry-after-ms": "x", "retry-after": "4"}, 4.0),
    ("negative retry-after-ms clamps", {"retry-after-ms": "-5"}, 0.0),
    ("retry-after wins over reset headers",
     {"retry-after": "3", "x-ratelimit-reset-requests": "1m"}, 3.0),
    ("openai reset requests 1m30s",
     {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"}, 90.0),
    ("openai reset requests 20ms",
     {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20ms"}, 0.02),
    ("openai reset without remaining counts as exhausted",
     {"x-ratelimit-reset-tokens": "6m0s"}, 360.0),
    ("openai: only the exhausted limit's reset counts",
     {"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "20s"}, 20.0),
    ("openai: both exhausted, the longer wait",
     {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s",
      "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "7s"}, 7.0),
    ("openai: nothing exhausted, nothing asked",
     {"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "2s"}, None),
    ("openai: unparsable reset ignored",
     {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "whenever"}, None),
    ("anthropic requests reset",
     {"anthropic-ratelimit-requests-remaining": "0",
      "anthropic-ratelimit-requests-reset": rfc3339(30)}, 30.0),
    ("anthropic offset timestamp",
     {"anthropic-ratelimit-requests-remaining": "0",
      "anthropic-ratelimit-requests-reset": (NOW + timedelta(seconds=5)).astimezone(
          timezone(timedelta(hours=2))).isoformat()}, 5.0),
    ("anthropic tokens exhausted, requests not",
     {"anthropic-ratelimit-requests-remaining": "10",
      "anthropic-ratelimit-requests-reset": rfc3339(50),
      "anthropic-ratelimit-tokens-remaining": "0",
      "anthropic-ratelimit-tokens-reset": rfc3339(12)}, 12.0),
    ("anthropic reset in the past", {"anthropic-ratelimit-tokens-reset": rfc3339(-3)}, 0.0),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), [c[1:] for c in WAIT_CASES],
                         ids=[c[0] for c in WAIT_CASES])  # fmt: skip
def test_requested_wait(headers: dict[str, str], expected: float | None) -> None:
    got = requested_wait(headers, NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)
