"""Soak: a vendor that hangs, under steady load, for 10 minutes. Memory and sockets stay flat?

    .venv/bin/python bench/soak_hang.py [--duration 600] [--rate 20] [--json out.json]

`gateway serve` runs as its own process pinned to one core; this script (load driver and
the two simulated vendors) runs on the other. The primary vendor, alpha, accepts every
connection and never answers; beta is healthy. The breaker is configured so it never
opens (and health ejection is off), so every request meets the hang: it waits out the
first-token timeout on alpha, then fails over to beta. That is the worst case for leaks:
a hung upstream connection per request, abandoned by the gateway, all the time.

Every `--interval` seconds it samples the gateway process from /proc: RSS, open file
descriptors, and its TCP sockets by state and by peer (clients, alpha, beta), plus how
many hung requests alpha still holds. Flat means: after the warm-up, RSS grows by less
than `--max-growth-mb` and the socket counts stay bounded by the concurrency the load
implies. Exit status 1 when not flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
from processes import Pinned, ProcessGroup, StartupError, free_port

from gateway.chaos.load import LoadDriver, LoadPlan, RequestRecord
from gateway.config import GatewayConfig
from gateway.simulator import FaultSpec, VendorHandle, VendorSpec, serve_vendors

TCP_STATES = {"01": "established", "06": "time_wait", "08": "close_wait", "0A": "listen"}
STARTUP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Options:
    duration: float
    rate: float
    stream_share: float
    interval: float
    warmup: float
    first_token: float
    max_growth_mb: float
    gateway_core: int
    load_core: int
    json_path: Path | None


@dataclass(frozen=True)
class Sample:
    t: float
    rss_mb: float
    fds: int
    sockets: dict[str, int]  # tcp state -> count
    peers: dict[str, int]  # clients / alpha / beta -> established connections
    alpha_hung: int  # requests alpha holds open right now
    done: int
    ok: int


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench/soak_hang.py", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--stream-share", type=float, default=0.5)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds not judged")
    parser.add_argument("--first-token", type=float, default=1.0, help="gateway timeout, s")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--gateway-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args(argv)
    return Options(a.duration, a.rate, a.stream_share, a.interval, min(a.warmup, a.duration / 3),
                   a.first_token, a.max_growth_mb, a.gateway_core, a.load_core, a.json)  # fmt: skip


def gateway_config(port: int, alpha: str, beta: str, first_token: float) -> str:
    # A breaker that never opens and no health ejection: every request meets the hang.
    health = ""
    if "health" in GatewayConfig.model_fields:
        health = "health: {probe: {kind: none}, outlier: {enabled: false}}"
    return f"""{health}
server: {{host: 127.0.0.1, port: {port}}}
timeouts: {{connect: 1.0, first_token: {first_token}, idle: 2.0}}
breaker: {{consecutive_failures: 1000000, failure_rate: 1.0, min_calls: 1000000}}
retry: {{budget_ratio: 10, budget_min_per_second: 1000}}
providers:
  alpha: {{kind: openai_compatible, base_url: "{alpha}/v1"}}
  beta: {{kind: openai_compatible, base_url: "{beta}/v1"}}
routes:
  soak: {{timeout: 30, fallbacks: [alpha/sim, beta/sim]}}
"""


def tcp_sockets(pid: int, ports: dict[int, str]) -> tuple[dict[str, int], dict[str, int]]:
    """The process's TCP sockets by state, and its established ones by peer name."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    states: dict[str, int] = {}
    peers: dict[str, int] = {}
    for table in ("tcp", "tcp6"):
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[9] not in inodes:
                continue
            state = TCP_STATES.get(fields[3], fields[3])
            states[state] = states.get(state, 0) + 1
            if state == "established":
                peer = ports.get(int(fields[2].rsplit(":", 1)[1], 16), "clients")
                peers[peer] = peers.get(peer, 0) + 1
    return states, peers


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def wait_ready(url: str, child: Pinned) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and child.alive():
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise StartupError(f"the gateway did not start:\n{child.output_tail()}")


def start_gateway(
    group: ProcessGroup, options: Options, alpha: str, beta: str
) -> tuple[str, Pinned]:
    port = free_port()
    config = group.workdir / "soak-gateway.yaml"
    config.write_text(gateway_config(port, alpha, beta, options.first_token))
    script = Path(sys.executable).with_name("gateway")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]
    argv = [*command, "serve", "--config", str(config), "--log-level", "warning"]
    return f"http://127.0.0.1:{port}", group.start("gateway", options.gateway_core, argv)


class Sampler:
    def __init__(self, child: Pinned, alpha: VendorHandle, beta: VendorHandle) -> None:
        self.child = child
        self.alpha = alpha
        self.ports = {alpha.port: "alpha", beta.port: "beta"}
        self.samples: list[Sample] = []
        self.done = 0
        self.ok = 0

    def on_record(self, record: RequestRecord) -> None:
        self.done += 1
        self.ok += record.ok

    def take(self, t: float) -> Sample:
        pid = self.child.pid
        states, peers = tcp_sockets(pid, self.ports)
        sample = Sample(
            t=round(t, 1),
            rss_mb=round(self.child.rss_bytes() / 2**20, 1),
            fds=fd_count(pid),
            sockets=states,
            peers=peers,
            alpha_hung=self.alpha.stats().in_flight,
            done=self.done,
            ok=self.ok,
        )
        self.samples.append(sample)
        print(
            f"{sample.t:7.0f}s  rss {sample.rss_mb:7.1f} MB  fds {sample.fds:4d}  "
            f"tcp {sample.sockets}  peers {sample.peers}  alpha holds {sample.alpha_hung:3d}  "
            f"done {sample.done} ok {sample.ok}",
            flush=True,
        )
        return sample


async def soak(options: Options, group: ProcessGroup) -> tuple[list[Sample], list[RequestRecord]]:
    specs = [VendorSpec(name=n, models=("sim",), chunk_delay_ms=20) for n in ("alpha", "beta")]
    async with serve_vendors(specs) as vendors:
        alpha, beta = vendors["alpha"], vendors["beta"]
        alpha.set_fault(FaultSpec(kind="hang"))
        url, child = start_gateway(group, options, alpha.base_url, beta.base_url)
        await wait_ready(url, child)
        sampler = Sampler(child, alpha, beta)
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        def clock() -> float:
            return loop.time() - t0

        plan = LoadPlan(
            url=url + "/v1",
            model="soak",
            rate=options.rate,
            concurrency=max(64, int(options.rate * (options.first_token + 2) * 2)),
            duration=options.duration,
            stream_share=options.stream_share,
            prompt_words=(4, 60),
            request_timeout=30.0,
        )
        driver = LoadDriver(plan, clock, sampler.on_record)
        load = asyncio.create_task(driver.run())
        sampler.take(0.0)
        while not load.done():
            await asyncio.wait({load}, timeout=options.interval)
            sampler.take(clock())
        records = load.result()
        await asyncio.sleep(options.first_token + 1)  # the last hung attempts time out
        sampler.take(clock())
    return sampler.samples, records


def judge(
    samples: list[Sample], options: Options, records: list[RequestRecord]
) -> dict[str, object]:
    steady = [s for s in samples if s.t >= options.warmup] or samples
    load_samples = [s for s in steady if s.t < options.duration] or steady
    first, last = steady[0], load_samples[-1]
    rss = [s.rss_mb for s in load_samples]
    upstream_alpha = [s.peers.get("alpha", 0) for s in load_samples]
    close_wait = [s.sockets.get("close_wait", 0) for s in samples]
    ok = sum(r.ok for r in records)
    summary: dict[str, object] = {
        "requests": len(records),
        "complete": ok,
        "not_complete": len(records) - ok,
        "rss_mb_after_warmup": first.rss_mb,
        "rss_mb_at_end": last.rss_mb,
        "rss_growth_mb": round(last.rss_mb - first.rss_mb, 1),
        "rss_max_mb": max(rss),
        "fds_range": [min(s.fds for s in load_samples), max(s.fds for s in load_samples)],
        "alpha_connections_range": [min(upstream_alpha), max(upstream_alpha)],
        "close_wait_max": max(close_wait),
        "fds_after_load": samples[-1].fds,
        "alpha_holds_after_load": samples[-1].alpha_hung,
    }
    # Hung attempts in flight: rate x first-token timeout, twice over for jitter.
    bound = int(options.rate * options.first_token * 2) + 10
    summary["flat"] = (
        last.rss_mb - first.rss_mb < options.max_growth_mb
        and max(upstream_alpha) <= bound
        and max(close_wait) <= bound
        and samples[-1].alpha_hung <= 2
        and ok == len(records)
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {options.load_core})
    print(f"soak: {options.duration:g}s at {options.rate:g} req/s, alpha hangs, beta answers")
    with tempfile.TemporaryDirectory() as work, ProcessGroup(Path(work)) as group:
        samples, records = asyncio.run(soak(options, group))
    summary = judge(samples, options, records)
    print(json.dumps(summary, indent=2))
    if options.json_path is not None:
        data = {"options": {k: str(v) for k, v in asdict(options).items()}, "summary": summary,
                "samples": [asdict(s) for s in samples]}  # fmt: skip
        options.json_path.write_text(json.dumps(data, indent=2))
    return 0 if summary["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
