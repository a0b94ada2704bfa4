"""What a simulated vendor has seen: counters and the last request bodies."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Never kept: a recorded request must not carry a credential.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})
KEEP_REQUESTS = 200


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One API request as received. `body` is the parsed JSON (None if the body was not JSON);
    header names are lower-case and credentials are left out."""

    path: str
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Counters since start or the last reset.

    total      API requests received (control requests under /_sim are not counted)
    by_path    requests per endpoint: "chat", "messages", "embeddings", "models"
    statuses   responses per HTTP status sent, fault answers included
    faults     faults applied per kind; `reset` and `hang` send no status at all
    in_flight  requests being handled now
    requests   the last 200 requests, oldest first
    """

    total: int
    by_path: dict[str, int]
    statuses: dict[int, int]
    faults: dict[str, int]
    in_flight: int
    requests: tuple[RecordedRequest, ...]

    @property
    def bodies(self) -> list[Any]:
        return [request.body for request in self.requests]

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_path": self.by_path,
            "statuses": {str(code): count for code, count in self.statuses.items()},
            "faults": self.faults,
            "in_flight": self.in_flight,
            "requests": [
                {"path": r.path, "body": r.body, "headers": r.headers} for r in self.requests
            ],
        }


class StatsRecorder:
    """Mutable counters, owned by one event loop."""

    def __init__(self) -> None:
        self._by_path: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._faults: Counter[str] = Counter()
        self._requests: deque[RecordedRequest] = deque(maxlen=KEEP_REQUESTS)
        self._total = 0
        self._in_flight = 0

    def begin(self, path: str, body: Any, headers: Mapping[str, str]) -> None:
        self._total += 1
        self._in_flight += 1
        self._by_path[path] += 1
        kept = {k.lower(): v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
        self._requests.append(RecordedRequest(path, body, kept))

    def end(self) -> None:
        self._in_flight -= 1

    def status(self, code: int) -> None:
        self._statuses[code] += 1

    def fault(self, kind: str) -> None:
        self._faults[kind] += 1

    def reset(self) -> None:
        """Forget everything except the requests still in flight."""
        self._by_path.clear()
        self._statuses.clear()
        self._faults.clear()
        self._requests.clear()
        self._total = 0

    def snapshot(self) -> StatsSnapshot:
        return StatsSnapshot(
            total=self._total,
            by_path=dict(self._by_path),
            statuses=dict(self._statuses),
            faults=dict(self._faults),
            in_flight=self._in_flight,
            requests=tuple(self._requests),
        )
