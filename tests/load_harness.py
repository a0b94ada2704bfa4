"""A steady stream of chat requests through the openai SDK from background threads, every
outcome recorded, for tests that change the config while traffic flows."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import openai

from gateway.simulator import expected_answer


@dataclass(frozen=True, slots=True)
class Outcome:
    prompt: str
    started: float  # time.monotonic() before the call
    finished: float  # and after it
    ok: bool
    provider: str = ""
    route: str = ""
    version: str = ""
    error: str = ""


@dataclass
class SteadyLoad:
    base_url: str
    model: str = "chat"
    threads: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> SteadyLoad:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self, n: int) -> None:
        client = openai.OpenAI(base_url=self.base_url, api_key="x", max_retries=0, timeout=10)
        i = 0
        while not self._stop.is_set():
            prompt = f"load-{n}-{i}"
            i += 1
            started = time.monotonic()
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=self.model, messages=[{"role": "user", "content": prompt}]
                )
                content = raw.parse().choices[0].message.content
                h = raw.headers
                outcome = Outcome(
                    prompt,
                    started,
                    time.monotonic(),
                    content == expected_answer(prompt),
                    h["x-gateway-provider"],
                    h["x-gateway-route"],
                    h["x-gateway-config-version"],
                    "" if content == expected_answer(prompt) else f"wrong answer: {content!r}",
                )
            except openai.OpenAIError as exc:
                error = f"{type(exc).__name__}: {exc}"
                outcome = Outcome(prompt, started, time.monotonic(), False, error=error)
            with self._lock:
                self.outcomes.append(outcome)
        client.close()

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_for(self, more: int, timeout: float = 10.0) -> None:
        """Block until `more` further requests have finished."""
        target = self.count() + more
        deadline = time.monotonic() + timeout
        while self.count() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"load stalled at {self.count()} requests")
            time.sleep(0.01)

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=15)
        return list(self.outcomes)
