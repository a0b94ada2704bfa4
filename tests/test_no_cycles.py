"""The request path leaves no reference cycles behind.

Garbage in a cycle is freed only by CPython's cyclic collector; a few dozen such objects
per request made a young collection every couple of seconds of 3-5 ms, during which no
request moved: most of the gateway's p99 at low concurrency. Objects freed by reference
counting cost nothing extra. This runs real requests through a gateway on loopback and
inspects what the collector would have had to free.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable

import openai
import pytest

from gateway.api.disconnect import DisconnectWatch
from gateway.api.openai import WATCH_AFTER
from gateway.simulator import FaultSpec, VendorFleet
from tests.conftest import FAST, RunningGateway, config_for

QUIET = FAST + "health: {probe: {kind: none}}\n"
OURS = ("gateway", "uvicorn", "httptools")


def requests(client: openai.OpenAI, n: int) -> None:
    for i in range(n):
        messages = [{"role": "user", "content": f"cycle check {i}"}]
        answer = client.chat.completions.create(model="chat", messages=messages)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
        stream = client.chat.completions.create(model="chat", messages=messages, stream=True)  # type: ignore[arg-type]
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def cyclic_garbage_of_ours(run: Callable[[], None], settle: float) -> Counter[str]:
    """Objects of ours that only the cyclic collector would free after `run`, by type;
    `settle` lets the gateway's thread finish its bookkeeping first."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        time.sleep(settle)
        gc.collect()
        return Counter(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.split(".")[0] in OURS
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def test_chat_and_streams_leave_no_cyclic_garbage_of_ours(
    fleet: VendorFleet, start_gateway: Callable[[str], RunningGateway]
) -> None:
    gw = start_gateway(config_for(fleet, "  chat: {fallbacks: [alpha/sim-model]}\n", QUIET))
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=10)
    requests(client, 5)  # warm: connections, caches, lazily built objects
    ours = cyclic_garbage_of_ours(lambda: requests(client, 30), settle=0.2)
    assert not ours, f"objects freed only by the cyclic collector: {dict(ours)}"


def test_requests_that_outlive_the_disconnect_watch_delay_leave_none_either(
    fleet: VendorFleet,
    start_gateway: Callable[[str], RunningGateway],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Answers slower than `WATCH_AFTER` get a watcher task; it must end without a cycle."""
    armed: list[DisconnectWatch] = []
    real_arm = DisconnectWatch.arm

    def counted_arm(watch: DisconnectWatch) -> None:
        armed.append(watch)
        real_arm(watch)

    monkeypatch.setattr(DisconnectWatch, "arm", counted_arm)
    gw = start_gateway(config_for(fleet, "  chat: {fallbacks: [alpha/sim-model]}\n", QUIET))
    fleet["alpha"].set_fault(FaultSpec(kind="latency", delay_ms=WATCH_AFTER * 2500))
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=10)
    requests(client, 2)
    ours = cyclic_garbage_of_ours(lambda: requests(client, 5), settle=0.3)
    assert len(armed) == 14  # every request of the 7 chats and 7 streams had a watcher
    armed.clear()
    assert not ours, f"objects freed only by the cyclic collector: {dict(ours)}"
