"""Pure parsing of the wait a vendor asks for after a 429.

Sources, most authoritative first: `retry-after-ms`, `retry-after` (seconds or an HTTP
date), OpenAI's `x-ratelimit-reset-{requests,tokens}` durations ("1s", "6m0s", "20ms"),
Anthropic's `anthropic-ratelimit-{requests,tokens}-reset` RFC 3339 timestamps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float | None:
    """'1h2m3.5s' / '20ms' / '6m0s' / '2' -> seconds."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _seconds_until(text: str, now: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _exhausted(headers: Mapping[str, str], kind: str) -> bool:
    """Whether the `kind` limit is the one used up (unknown counts as yes)."""
    for name in (f"x-ratelimit-remaining-{kind}", f"anthropic-ratelimit-{kind}-remaining"):
        value = headers.get(name)
        if value is not None:
            return value.strip() in ("0", "0.0")
    return True


def requested_wait(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the vendor asked us to wait, or None when it said nothing usable.

    `headers` must have lower-case names.
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is not None:
        seconds = parse_duration(value)
        if seconds is None:
            seconds = _seconds_until(value, now)
        if seconds is not None:
            return seconds
    waits = []
    for kind in ("requests", "tokens"):
        if not _exhausted(headers, kind):
            continue
        if (d := headers.get(f"x-ratelimit-reset-{kind}")) is not None:
            seconds = parse_duration(d)
            if seconds is not None:
                waits.append(seconds)
        if (t := headers.get(f"anthropic-ratelimit-{kind}-reset")) is not None:
            seconds = _seconds_until(t, now)
            if seconds is not None:
                waits.append(seconds)
    return max(waits) if waits else None
