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

from gateway.simulator import VendorFleet
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


def test_chat_and_streams_leave_no_cyclic_garbage_of_ours(
    fleet: VendorFleet, start_gateway: Callable[[str], RunningGateway]
) -> None:
    gw = start_gateway(config_for(fleet, "  chat: {fallbacks: [alpha/sim-model]}\n", QUIET))
    client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=10)
    requests(client, 5)  # warm: connections, caches, lazily built objects
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        requests(client, 30)
        time.sleep(0.2)  # the gateway's thread finishes its bookkeeping
        gc.collect()
        ours = Counter(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.split(".")[0] in OURS
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not ours, f"objects freed only by the cyclic collector: {dict(ours)}"
