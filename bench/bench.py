"""Gateway vs. calling the simulated vendor directly: throughput, CPU per request, latency.

    .venv/bin/python bench/bench.py [--duration S] [--quick] [--json out.json] [--markdown out.md]

The gateway runs as `gateway serve` (one worker, log level warning) pinned to one core;
the simulated vendors and the load generator (wrk) share the other core. Every cell is a
closed-loop wrk run of `--duration` seconds at one concurrency, non-streaming and
streaming (8 content chunks), against three targets: the vendor directly (the ceiling of
wrk + vendor), a bare TCP relay on the gateway's core (`tcp_relay.py`: the latency floor
of any proxy on this machine), and the gateway. Every child process is stopped at the
end, also on error or Ctrl-C; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import loadgen
import machine
import report
from processes import Pinned, ProcessGroup, StartupError, free_port, wait_for_line

REPO = Path(__file__).resolve().parent.parent
ALIAS = "bench"
VENDOR_MODEL = "sim-model"
STARTUP_TIMEOUT = 60.0
TARGETS = ("direct", "relay", "gateway")
NOISE_THRESHOLD = 0.1  # a core this busy before the run means other work shares the machine


@dataclass(frozen=True)
class Options:
    duration: int
    warmup: int
    concurrency: tuple[int, ...]
    modes: tuple[str, ...]
    targets: tuple[str, ...]
    gateway_core: int
    load_core: int
    json_path: Path | None
    markdown_path: Path | None
    telemetry: str  # "default" (as the config's defaults say) | "off"
    source: Path | None  # the gateway package from another tree (an older revision)


@dataclass(frozen=True)
class Endpoints:
    direct: str  # the vendor's chat completions URL
    relay: str  # the same, through the bare TCP relay
    gateway: str
    gateway_process: Pinned

    def target(self, name: str) -> tuple[str, str]:
        """(URL, model) for a target: the gateway is asked for the alias."""
        if name == "gateway":
            return self.gateway, ALIAS
        return (self.relay if name == "relay" else self.direct), VENDOR_MODEL


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="bench/bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 s per cell, 1 s warm-up")
    parser.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per target")
    parser.add_argument("--concurrency", default="1,16,64", help="comma list (default 1,16,64)")
    parser.add_argument("--modes", default="chat,stream", help="chat,stream")
    parser.add_argument(
        "--targets", default="direct,relay,gateway", help="direct,relay,gateway (default: all)"
    )
    parser.add_argument("--gateway-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="write a markdown report")
    parser.add_argument(
        "--telemetry",
        choices=tuple(TELEMETRY),
        default="default",
        help="off: telemetry.enabled false; no-logs: metrics without request-log lines "
        "(default: the config's defaults)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="run the gateway package of this source tree (a git worktree of another "
        "revision), for an A/B against this one",
    )
    args = parser.parse_args(argv)
    duration = 3 if args.quick and args.duration == 10 else args.duration
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    modes = tuple(m for m in args.modes.split(",") if m)
    targets = tuple(t for t in args.targets.split(",") if t)
    if duration < 1 or warmup < 0:
        parser.error("--duration must be at least 1 and --warmup at least 0 (whole seconds)")
    if not set(modes) <= {"chat", "stream"} or not set(targets) <= set(TARGETS):
        parser.error("--modes takes chat,stream and --targets takes direct,relay,gateway")
    try:
        concurrency = tuple(int(n) for n in args.concurrency.split(",") if n)
    except ValueError:
        parser.error("--concurrency takes a comma list of integers, e.g. 1,16,64")
    if not concurrency or min(concurrency) < 1:
        parser.error("--concurrency takes positive integers, e.g. 1,16,64")
    return Options(
        duration,
        warmup,
        concurrency,
        modes,
        targets,
        args.gateway_core,
        args.load_core,
        args.json,
        args.markdown,
        args.telemetry,
        args.source.resolve() if args.source is not None else None,
    )


def preflight(options: Options) -> str | None:
    """Why the bench cannot run here, or None."""
    return preflight_tools(options.gateway_core, options.load_core)


def preflight_tools(gateway_core: int, load_core: int) -> str | None:
    if shutil.which("taskset") is None:
        return "taskset is missing (util-linux): apt-get install -y util-linux"
    if loadgen.wrk_path() is None:
        return "wrk is missing: apt-get install -y wrk"
    cores = os.sched_getaffinity(0)
    for core in (gateway_core, load_core):
        if core not in cores:
            return f"core {core} is not available here (cores: {sorted(cores)}); see --*-core"
    if gateway_core == load_core:
        return "--gateway-core and --load-core must differ"
    return None


def start_vendors(group: ProcessGroup, core: int) -> str:
    child = group.start(
        "vendors",
        core,
        [
            sys.executable,
            "-m",
            "gateway.simulator",
            "--name",
            "alpha",
            "--name",
            "beta",
            "--chunks",
            "8",
        ],
    )
    line = wait_for_line(child, "alpha: ", STARTUP_TIMEOUT)
    return line.split(": ", 1)[1].strip()


def start_relay(group: ProcessGroup, core: int, vendor_url: str) -> str:
    port = free_port()
    upstream = vendor_url.rsplit(":", 1)[1]
    script = str(Path(__file__).with_name("tcp_relay.py"))
    child = group.start(
        "relay", core, [sys.executable, script, "--port", str(port), "--upstream-port", upstream]
    )
    wait_for_line(child, "relay: ready", STARTUP_TIMEOUT)
    return f"http://127.0.0.1:{port}"


TELEMETRY = {  # --telemetry choices: the config line each one adds
    "default": "",  # as the config's defaults say: metrics and request-log lines on
    "no-logs": "telemetry: {logs: {requests: false}}\n",  # metrics only
    "off": "telemetry: {enabled: false}\n",
}


def gateway_config(vendor_url: str, port: int, telemetry: str = "default") -> str:
    # A second vendor as fallback, so the route walks a real plan (alpha first, beta next).
    return (
        TELEMETRY[telemetry] + f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "providers:\n"
        f'  alpha: {{kind: openai_compatible, base_url: "{vendor_url}/v1"}}\n'
        f'  beta: {{kind: openai_compatible, base_url: "{vendor_url}/v1"}}\n'
        "routes:\n"
        f"  {ALIAS}: {{fallbacks: [alpha/{VENDOR_MODEL}, beta/{VENDOR_MODEL}]}}\n"
    )


def start_gateway(
    group: ProcessGroup,
    core: int,
    vendor_url: str,
    telemetry: str = "default",
    name: str = "gateway",
    under: Sequence[str] = (),
    timeout: float = STARTUP_TIMEOUT,
    log_core: int | None = None,
    source: Path | None = None,
) -> tuple[str, Pinned]:
    """`gateway serve` on a free port, answering; `under` runs it inside another command
    (valgrind), as `python -c`, so the package in the working directory is measured.
    `log_core`: its stdout (the request log) through a pipe drained on that core.
    `source`: the package from that tree instead (another revision's worktree, for A/B)."""
    port = free_port()
    # A directory of its own, as a mounted ConfigMap has: the gateway watches the config's
    # directory, and its log file must not wake that watch with every batch it writes.
    config = group.workdir / f"config-{name}" / "providers.yaml"
    config.parent.mkdir()
    config.write_text(gateway_config(vendor_url, port, telemetry))
    script = Path(sys.executable).with_name("gateway")
    command = (
        [str(script)]
        if script.exists() and not under and source is None
        else [*under, sys.executable, "-c", "from gateway.cli import main; main()"]
    )
    if source is not None:  # -P: not the working directory's package first
        command = ["env", f"PYTHONPATH={source}", command[0], "-P", *command[1:]]
    argv = [*command, "serve", "--config", str(config), "--log-level", "warning"]
    child = group.start(name, core, argv, log_core)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.alive():
        if _answers(url):
            return url, child
        time.sleep(0.1)
    raise StartupError(f"gateway did not answer at {url}:\n{child.output_tail()}")


def _answers(url: str) -> bool:
    body = json.dumps({"model": ALIAS, "messages": [{"role": "user", "content": "hi"}]})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200 and b'"choices"' in response.read()
    except OSError:
        return False


def measure(
    options: Options, endpoints: Endpoints, target: str, mode: str, concurrency: int
) -> report.Cell:
    url, model = endpoints.target(target)
    workload = loadgen.Workload(url, model, mode == "stream")
    gw = endpoints.gateway_process
    cores_before, cpu_before = machine.CoreTimes.sample(), gw.cpu_seconds()
    wall = time.monotonic()
    result = loadgen.run_wrk(
        workload, concurrency, options.duration, options.load_core, gw.log.parent
    )
    wall = time.monotonic() - wall
    cpu, cores = gw.cpu_seconds() - cpu_before, machine.CoreTimes.sample()
    on_gateway = target == "gateway"
    return report.Cell(
        target=target,
        mode=mode,
        concurrency=concurrency,
        seconds=round(result.seconds, 3),
        requests=result.requests,
        rps=round(result.rps, 1),
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        errors=result.errors,
        gateway_core_busy=round(cores.busy_since(cores_before, options.gateway_core), 3),
        load_core_busy=round(cores.busy_since(cores_before, options.load_core), 3),
        gateway_cpu_ms_per_request=round(1000 * cpu / result.requests, 4)
        if on_gateway and result.requests
        else None,
        gateway_cpu_share=round(cpu / wall, 3) if on_gateway else None,
        gateway_rss_mb=round(gw.rss_bytes() / 2**20, 1) if on_gateway else None,
    )


def run_cells(options: Options, endpoints: Endpoints) -> list[report.Cell]:
    cells = []
    for mode in options.modes:
        for target in options.targets:
            if options.warmup:
                url, model = endpoints.target(target)
                workload = loadgen.Workload(url, model, mode == "stream")
                loadgen.run_wrk(
                    workload,
                    16,
                    options.warmup,
                    options.load_core,
                    endpoints.gateway_process.log.parent,
                )
            for concurrency in options.concurrency:
                cell = measure(options, endpoints, target, mode, concurrency)
                print(
                    f"  {target:7} {mode:6} c={concurrency:<3} {cell.rps:9,.0f} rps  "
                    f"p50 {cell.p50_ms:.3f} ms  p99 {cell.p99_ms:.3f} ms  "
                    f"errors {cell.errors}",
                    file=sys.stderr,
                    flush=True,
                )
                cells.append(cell)
    return cells


def background_load(options: Options) -> dict[int, float]:
    before = machine.CoreTimes.sample()
    time.sleep(1.0)
    after = machine.CoreTimes.sample()
    return {
        core: after.busy_since(before, core) for core in (options.gateway_core, options.load_core)
    }


def revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def render(cells: list[report.Cell], meta: dict[str, object], options: Options) -> str:
    comparisons = report.compare(cells)
    text = report.text_table(comparisons)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report.as_json(cells, meta), indent=2) + "\n")
    if options.markdown_path is not None:
        facts = "\n".join(f"- {key}: {value}" for key, value in meta.items())
        body = f"{facts}\n\n{report.markdown_table(comparisons)}\n"
        options.markdown_path.write_text(body)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    problem = preflight(options)
    if problem is not None:
        print(f"cannot run the benchmark: {problem}", file=sys.stderr)
        return 2
    noise = background_load(options)
    meta: dict[str, object] = {
        **machine.describe(),
        "revision": revision(),
        "duration_s": options.duration,
        "gateway_core": options.gateway_core,
        "load_core": options.load_core,
        "load_generator": "wrk, 1 thread",
        "telemetry": options.telemetry,
        "busy_before_run": {str(core): round(busy, 3) for core, busy in noise.items()},
    }
    for core, busy in noise.items():
        if busy > NOISE_THRESHOLD:
            print(
                f"warning: core {core} was {busy:.0%} busy before the run: other work on this "
                "machine will lower the figures",
                file=sys.stderr,
            )
    with (
        tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        meta["workdir"] = tmp  # named in the children's arguments; gone after the run
        vendor_url = start_vendors(group, options.load_core)
        gateway_url, gateway = start_gateway(
            group,
            options.gateway_core,
            vendor_url,
            options.telemetry,
            log_core=options.load_core,  # stdout through a pipe, as in a container
            source=options.source,
        )
        relay_url = start_relay(group, options.gateway_core, vendor_url)
        path = "/v1/chat/completions"
        endpoints = Endpoints(vendor_url + path, relay_url + path, gateway_url, gateway)
        cells = run_cells(options, endpoints)
    print(render(cells, meta, options))
    print(
        "\nDirect: the ceiling of wrk + vendor on the load core. Relay: a bare TCP relay on "
        "the gateway's core, the latency any proxy adds here. When a row says 'gateway (its "
        "core is saturated)', the gateway, not the generator, limits it."
    )
    return 0 if all(c.errors == 0 for c in cells) else 1


def exit_with(run: Callable[[], int]) -> None:
    """Exit with `run`'s status; a process that did not start or a failed wrk run is
    reported in one line, status 2."""
    try:
        sys.exit(run())
    except (StartupError, loadgen.LoadGenError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    exit_with(main)
