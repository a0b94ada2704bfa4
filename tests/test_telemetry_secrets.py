"""A secret planted in a vendor's key, which the vendor then echoes in its error bodies
(chat 5xx, a 4xx returned to the caller, a stream error event, the model list a probe
reads), appears in no log line, span, metric, status report or client response."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from gateway.simulator import VendorFleet
from tests.conftest import provider_block
from tests.test_health_probes import wait_for
from tests.test_telemetry import instrumented, serve  # noqa: F401  (serve is a fixture)

SECRET = "planted-secret-7Hq2Lx9Rv4Wp"


def echo_app(seen: list[str]) -> web.Application:
    """A vendor that puts the caller's key into every error it sends."""

    def key(request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        seen.append(auth)
        return auth.removeprefix("Bearer ")

    def error(status: int, request: web.Request) -> web.Response:
        message = f"key {key(request)} was refused (Authorization: Bearer {key(request)})"
        body = {"error": {"message": message, "type": "server_error", "code": None}}
        return web.json_response(body, status=status)

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body["model"] == "rejects":
            return error(400, request)
        if body["model"] == "streams" and body.get("stream"):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            event = {"error": {"message": f"stream failed for key {key(request)}"}}
            await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
            return response
        return error(500, request)

    async def models(request: web.Request) -> web.Response:
        return error(401, request)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    return app


@pytest.fixture
def echo_vendor() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    async def run() -> web.AppRunner:
        runner = web.AppRunner(echo_app(seen), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        return runner

    def main() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(run())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(5)
    yield f"http://127.0.0.1:{port[0]}/v1", seen
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def echo_row(url: str) -> dict[str, Any]:
    rows = httpx.get(url + "/status").json()["deployments"]
    return dict(next(d for d in rows if d["deployment"] == "echo/fails"))


def config(fleet: VendorFleet, echo_url: str) -> str:
    return f"""
timeouts: {{connect: 0.5, first_token: 1.5, idle: 0.8}}
retry: {{backoff_base: 0.01, backoff_max: 0.05}}
breaker: {{consecutive_failures: 1000, failure_rate: 1.0, min_calls: 1000}}
health:
  probe: {{interval: 0.05, unhealthy_threshold: 1000}}
  outlier: {{min_calls: 1000}}
telemetry: {{logs: {{output: stderr}}}}
{provider_block(fleet, ("alpha",))}  echo: {{kind: openai_compatible, base_url: "{echo_url}", api_key: "{SECRET}"}}
routes:
  chat: {{fallbacks: [echo/fails, alpha/sim-a]}}
  solo: {{fallbacks: [echo/fails]}}
  reject: {{fallbacks: [echo/rejects]}}
  streamy: {{fallbacks: [echo/streams, alpha/sim-a]}}
"""


def test_secret_never_leaks(
    fleet: VendorFleet,
    serve: Any,  # noqa: F811
    echo_vendor: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    url, seen = echo_vendor
    run = instrumented(serve, config(fleet, url))
    gw = run.gw
    shown: list[str] = []  # everything a client or an operator can see

    def call(model: str, stream: bool = False) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        response = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=10)
        shown.append(response.text + json.dumps(dict(response.headers)))
        return response

    assert call("chat").status_code == 200  # failed over past the echoing vendor
    assert call("solo").status_code == 503  # every attempt's (redacted) message in the body
    rejected = call("reject")
    assert rejected.status_code == 400  # the vendor's own message, returned to the caller
    assert "[REDACTED]" in rejected.json()["error"]["message"]
    assert call("streamy", stream=True).status_code == 200
    wait_for(lambda: echo_row(gw.url)["probe"]["failures"] >= 1, 5)  # probes read it too
    echo = echo_row(gw.url)
    assert "[REDACTED]" in echo["probe"]["last_error"]
    for path in ("/status", "/metrics", "/v1/gateway/explain/chat", "/v1/gateway/explain/solo"):
        shown.append(httpx.get(gw.url + path).text)
    assert any(SECRET in auth for auth in seen)  # the vendor did get, and echo, the key
    assert "[REDACTED]" in "".join(shown)

    for text in shown:
        assert SECRET not in text
    for record in caplog.records:
        assert SECRET not in record.getMessage()
    gw.stop()  # flushes the request log's last batch
    out, err = capfd.readouterr()
    assert '"event":"request"' in err  # the request log's own stream was captured too
    assert SECRET not in out and SECRET not in err
    spans = run.spans.get_finished_spans()
    assert len(spans) >= 8
    for span in spans:
        texts = [span.name, str(span.status.description), json.dumps(dict(span.attributes or {}))]
        texts += [json.dumps(dict(e.attributes or {})) for e in span.events]
        assert all(SECRET not in t for t in texts)
    metrics = run.metrics.get_metrics_data()
    assert metrics is not None and SECRET not in metrics.to_json()
