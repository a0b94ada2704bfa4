"""One scenario run: vendors and gateway up, the load and the fault timeline played
together while a sampler watches, everything healed and stopped at the end."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import aiohttp

from gateway.chaos.load import LoadDriver, LoadPlan, RequestRecord
from gateway.chaos.player import FaultPlayer
from gateway.chaos.probe import Sample, Sampler
from gateway.chaos.scenario import Profile, ProfileName, Scenario, dump_config, gateway_config
from gateway.chaos.target import GatewayTarget, InProcessGateway, RemoteGateway
from gateway.chaos.timeline import Window, windows
from gateway.chaos.vendors import LocalVendor, RemoteVendor, VendorControl, heal
from gateway.config import load_text
from gateway.heap import frozen
from gateway.simulator import VendorSpec, serve_vendors


class Progress(Protocol):
    def begin(self, scenario: str, duration: float, requests: int) -> None: ...

    def update(self, t: float, done: int, ok: int, faults: Mapping[str, str | None]) -> None: ...

    def end(self) -> None: ...


class QuietProgress:
    def begin(self, scenario: str, duration: float, requests: int) -> None:
        pass

    def update(self, t: float, done: int, ok: int, faults: Mapping[str, str | None]) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass
class RunResult:
    scenario: Scenario
    profile: ProfileName
    plan: LoadPlan
    timeline: tuple[Window, ...]
    target_url: str
    started_at: datetime
    records: list[RequestRecord] = field(default_factory=list)
    issued: int = 0
    samples: list[Sample] = field(default_factory=list)
    elapsed: float = 0.0


def load_plan(scenario: Scenario, profile: Profile, gateway_url: str) -> LoadPlan:
    load = scenario.load
    return LoadPlan(
        url=gateway_url + "/v1",
        model=scenario.route,
        rate=load.rate * profile.rate_scale,
        concurrency=math.ceil(load.concurrency * profile.rate_scale),
        duration=load.duration * profile.time_scale,
        stream_share=load.stream_share,
        prompt_words=load.prompt_words,
        request_timeout=load.request_timeout,
        seed=load.seed,
    )


def vendor_specs(scenario: Scenario) -> list[VendorSpec]:
    return [
        VendorSpec(
            name=v.name,
            port=v.port,
            models=v.models,
            chunks=v.chunks,
            chunk_delay_ms=v.chunk_delay_ms,
            seed=scenario.load.seed + i,
        )
        for i, v in enumerate(scenario.vendors)
        if v.url is None
    ]


def check_url_mode(scenario: Scenario) -> list[str]:
    """With --url the gateway's config is fixed, so vendors need fixed ports."""
    return [
        f"vendors[{i}].port: give '{v.name}' a fixed port that the gateway's providers.yaml "
        "points at (see `gateway chaos config`); port 0 picks a random one"
        for i, v in enumerate(scenario.vendors)
        if v.url is None and v.port == 0
    ]


@contextlib.asynccontextmanager
async def running_vendors(
    scenario: Scenario, session: aiohttp.ClientSession
) -> AsyncIterator[dict[str, VendorControl]]:
    async with serve_vendors(vendor_specs(scenario)) as handles:
        vendors: dict[str, VendorControl] = {}
        for v in scenario.vendors:
            if v.url is None:
                vendors[v.name] = LocalVendor(handles[v.name])
            else:
                vendors[v.name] = RemoteVendor(v.name, v.url, session)
        try:
            yield vendors
        finally:
            await heal(list(vendors.values()))


async def start_target(
    scenario: Scenario,
    vendors: Mapping[str, VendorControl],
    url: str | None,
    session: aiohttp.ClientSession,
) -> GatewayTarget:
    if url is not None:
        target = RemoteGateway(url, session)
        try:
            async with session.get(target.url + "/readyz", timeout=aiohttp.ClientTimeout(5)) as r:
                if r.status != 200:
                    raise RuntimeError(
                        f"the gateway at {target.url} is not ready (HTTP {r.status})"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RuntimeError(
                f"cannot reach the gateway at {target.url}: {exc or type(exc).__name__} "
                "(is it running? pass its root URL, e.g. http://127.0.0.1:8080)"
            ) from None
        return target
    config = gateway_config(scenario, {name: v.url for name, v in vendors.items()})
    # A log line per request would bury the progress display; a scenario may turn it on.
    config.setdefault("telemetry", {"logs": {"requests": False}})
    loaded = load_text(dump_config(config), f"scenario {scenario.name}")
    return await asyncio.to_thread(InProcessGateway.start, loaded, session)


async def run(
    scenario: Scenario,
    profile_name: ProfileName = "short",
    *,
    url: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Run `scenario` once; the caller evaluates and reports the result."""
    progress = progress or QuietProgress()
    profile = scenario.profile(profile_name)
    timeline = windows(scenario.faults, scenario.vendor_names, profile.time_scale)
    async with aiohttp.ClientSession() as session, running_vendors(scenario, session) as vendors:
        target = await start_target(scenario, vendors, url, session)
        try:
            plan = load_plan(scenario, profile, target.url)
            result = RunResult(
                scenario, profile_name, plan, timeline, target.url, datetime.now(UTC)
            )
            # Vendors, gateway and load share this interpreter: a full collection would
            # stop all three at once, a pause no real outage has, in the measured tail.
            with frozen():
                await _play(result, target, vendors, progress)
        finally:
            await heal(list(vendors.values()))
            await asyncio.to_thread(target.stop)
    return result


async def _play(
    result: RunResult,
    target: GatewayTarget,
    vendors: Mapping[str, VendorControl],
    progress: Progress,
) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def clock() -> float:
        return loop.time() - t0

    counts = {"done": 0, "ok": 0}

    def on_record(record: RequestRecord) -> None:
        counts["done"] += 1
        counts["ok"] += record.ok

    player = FaultPlayer(result.timeline, vendors, clock)
    sampler = Sampler(target, list(vendors.values()), player.labels, clock)
    await sampler.start()
    driver = LoadDriver(result.plan, clock, on_record)
    progress.begin(
        result.scenario.name, result.plan.duration, int(result.plan.rate * result.plan.duration)
    )
    t0 = loop.time()  # the load, the timeline and the samples share this zero
    load = asyncio.create_task(driver.run())
    play = asyncio.create_task(player.run())
    watch = asyncio.create_task(
        sampler.run(lambda s: progress.update(s.t, counts["done"], counts["ok"], s.faults))
    )
    try:
        await asyncio.wait({load, play}, return_when=asyncio.FIRST_EXCEPTION)
        if play.done() and play.exception() is not None:
            raise RuntimeError(f"a fault could not be applied: {play.exception()}")
        result.records = await load
    finally:
        for task in (load, play, watch):
            task.cancel()
        await asyncio.gather(load, play, watch, return_exceptions=True)
        progress.end()
    await sampler.take()
    result.issued = driver.issued
    result.samples = sampler.samples
    result.elapsed = clock()
