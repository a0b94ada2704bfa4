"""The load driver: a bounded, open-loop stream of chat requests against the gateway.

Requests are scheduled at a fixed rate for a fixed duration (`plan`, pure and seeded);
at most `concurrency` are in flight, so a slow gateway delays later sends rather than
piling up without bound. Each request is bounded by `request_timeout` and ends in exactly
one `RequestRecord`: when it started and ended, the status, the gateway's
x-gateway-provider / -attempts / -route headers, and the verdict on what came back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from gateway.chaos.verdict import Judgement, Verdict, judge_completion, judge_error, judge_stream
from gateway.simulator import expected_answer

# Drawn into prompts; any words do, the simulator hashes the prompt.
_VOCABULARY = ("outage", "vendor", "latency", "breaker", "stream", "token", "failover",
               "region", "model", "budget", "retry", "request", "answer", "timeout", "quota",
               "primary", "fallback", "recovery", "incident", "pager")  # fmt: skip
_DRAIN_MARGIN = 5.0  # after the last send, how much longer than request_timeout to wait


@dataclass(frozen=True, slots=True)
class LoadPlan:
    url: str  # the gateway's /v1 base URL
    model: str
    rate: float
    concurrency: int
    duration: float
    stream_share: float
    prompt_words: tuple[int, int]
    request_timeout: float
    seed: int = 0


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    index: int
    at: float  # seconds after the load starts
    stream: bool
    prompt: str
    words: int


@dataclass(frozen=True, slots=True)
class RequestRecord:
    index: int
    stream: bool
    words: int
    start: float  # seconds after the load starts
    end: float
    first_byte: float | None  # the response headers arrived (a stream: its first token)
    status: int | None
    provider: str | None
    attempts: int
    route: str
    verdict: Verdict
    detail: str

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def answered(self) -> float:
        """When the client had its answer: a stream's first byte, else the end."""
        return self.first_byte if self.stream and self.first_byte is not None else self.end

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.COMPLETE

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["start"], data["end"] = round(self.start, 4), round(self.end, 4)
        if self.first_byte is not None:
            data["first_byte"] = round(self.first_byte, 4)
        return data


def plan_requests(plan: LoadPlan) -> list[PlannedRequest]:
    """Every request of the run, in send order (deterministic for a seed)."""
    rng = random.Random(plan.seed)
    count = max(1, int(plan.rate * plan.duration))
    low, high = plan.prompt_words
    out = []
    for i in range(count):
        words = rng.randint(low, high)
        prompt = f"[{plan.seed}:{i}] " + " ".join(rng.choices(_VOCABULARY, k=words))
        out.append(
            PlannedRequest(i, i / plan.rate, rng.random() < plan.stream_share, prompt, words)
        )
    return out


Clock = Callable[[], float]
OnRecord = Callable[[RequestRecord], None]


class LoadDriver:
    def __init__(self, plan: LoadPlan, clock: Clock, on_record: OnRecord) -> None:
        self.plan = plan
        self._clock = clock  # seconds since the load started
        self._on_record = on_record
        self.records: list[RequestRecord] = []
        self.issued = 0

    async def run(self) -> list[RequestRecord]:
        plan = self.plan
        slots = asyncio.Semaphore(plan.concurrency)
        connector = aiohttp.TCPConnector(limit=plan.concurrency)
        timeout = aiohttp.ClientTimeout(total=None)
        tasks: dict[asyncio.Task[None], PlannedRequest] = {}
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for request in plan_requests(plan):
                delay = request.at - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                task = asyncio.create_task(self._one(session, request))
                task.add_done_callback(lambda _: slots.release())
                tasks[task] = request
                self.issued += 1
            await self._drain(tasks)
        return self.records

    async def _drain(self, tasks: dict[asyncio.Task[None], PlannedRequest]) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.plan.request_timeout + _DRAIN_MARGIN)
        for task in pending:  # only if a request outlived its own timeout: never expected
            task.cancel()
            request = tasks[task]
            hung = Judgement(Verdict.HANG, "never ended")
            self._record(request, request.at, None, None, {}, hung)
        await asyncio.gather(*pending, return_exceptions=True)

    async def _one(self, session: aiohttp.ClientSession, request: PlannedRequest) -> None:
        start = self._clock()
        status: int | None = None
        first_byte: float | None = None
        headers: dict[str, str] = {}
        body = {
            "model": self.plan.model,
            "messages": [{"role": "user", "content": request.prompt}],
            "stream": request.stream,
        }
        expected = expected_answer(request.prompt)
        try:
            async with asyncio.timeout(self.plan.request_timeout):
                url = self.plan.url + "/chat/completions"
                async with session.post(url, json=body) as response:
                    status, first_byte = response.status, self._clock()
                    headers = {k.lower(): v for k, v in response.headers.items()}
                    judgement = await _read(response, request.stream, expected)
        except TimeoutError:
            judgement = Judgement(Verdict.HANG, f"no end within {self.plan.request_timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            judgement = Judgement(Verdict.BROKEN, f"{type(exc).__name__}: {exc}"[:200])
        self._record(request, start, first_byte, status, headers, judgement)

    def _record(
        self,
        request: PlannedRequest,
        start: float,
        first_byte: float | None,
        status: int | None,
        headers: dict[str, str],
        judgement: Judgement,
    ) -> None:
        record = RequestRecord(
            index=request.index,
            stream=request.stream,
            words=request.words,
            start=start,
            end=self._clock(),
            first_byte=first_byte,
            status=status,
            provider=headers.get("x-gateway-provider"),
            attempts=int(headers.get("x-gateway-attempts") or 0),
            route=headers.get("x-gateway-route", ""),
            verdict=judgement.verdict,
            detail=judgement.detail,
        )
        self.records.append(record)
        self._on_record(record)


async def _read(response: aiohttp.ClientResponse, stream: bool, expected: str) -> Judgement:
    if not stream:
        return judge_completion(response.status, await response.read(), expected)
    if response.status != 200:
        return judge_error(response.status, await response.read())
    payloads = []
    async for line in response.content:
        if line.startswith(b"data:"):
            payloads.append(line[5:].strip())
    return judge_stream(payloads, expected)
