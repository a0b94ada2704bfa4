"""What telemetry costs in throughput: a gateway with it on against one with it off.

    .venv/bin/python bench/telemetry_overhead.py [--rounds 5] [--duration 5] [--variants ...]
                                                 [--baseline DIR]
                                                 [--alternate]

One gateway per variant runs, all pinned to the same core, in front of the same
simulated vendors; wrk and the vendors share the other core. Variants: "default" is the
config's defaults (metrics, request-log lines on stdout, no tracing exporter); "no-logs"
is metrics without request-log lines; "off" is `telemetry.enabled: false`. Each
gateway's stdout goes through a pipe to a reader on the load core, as a container
runtime takes a pod's stdout (`--log-to file` writes it straight into a file here,
which costs the gateway the file system's work too).

How they are compared matters more than anything else here. On a shared VM the same
gateway's CPU time per request moves by 30-50% from one minute to the next (another
tenant on the host's other hyperthread or cache), far more than telemetry costs. So by
default every cell drives all the variants *at once*, one wrk each: the kernel gives
each busy process on the core an equal share of it, so whatever slows the host slows
all of them alike, and a variant's throughput against "off" in the same cell is the
inverse of its CPU cost per request. Each round yields one such ratio per cell; the
figure is the median over rounds, with the lowest and highest. `--alternate` drives one
variant at a time instead (the order reversed every other round), which shows the
absolute rates but is at the mercy of the host's drift.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import loadgen
from processes import Pinned, ProcessGroup

from bench import ALIAS, TELEMETRY, exit_with, preflight_tools, start_gateway, start_vendors

Cell = tuple[str, int, str]  # mode, concurrency, variant


def table(
    unit: str,
    figures: dict[Cell, list[float]],
    modes: list[str],
    concurrencies: list[int],
    measured: list[str],
    lower_is_better: bool,
) -> str:
    """Markdown: per cell the median rate of "off", and each variant's median rate with
    its cost against "off": the median of the rounds' ratios, then the range."""
    lines = [
        f"| mode | conc | off {unit} | "
        + " | ".join(f"{v} {unit} (cost; lowest..highest)" for v in measured)
        + " |",
        "|---|---|---|" + "---|" * len(measured),
    ]
    digits = 1 if lower_is_better else 0  # microseconds with a decimal, rps without
    for mode in modes:
        for concurrency in concurrencies:
            off = figures[(mode, concurrency, "off")]
            cells = []
            for variant in measured:
                on = figures[(mode, concurrency, variant)]
                costs = [
                    (a / b - 1) if lower_is_better else (1 - a / b)
                    for a, b in zip(on, off, strict=True)
                ]
                cells.append(
                    f"{statistics.median(on):,.{digits}f} ({statistics.median(costs):.1%}; "
                    f"{min(costs):.1%}..{max(costs):.1%})"
                )
            median_off = statistics.median(off)
            row = f"| {mode} | {concurrency} | {median_off:,.{digits}f} | " + " | ".join(cells)
            lines.append(row + " |")
    return "\n".join(lines)


def drive(
    targets: dict[str, tuple[str, Pinned]],
    mode: str,
    concurrency: int,
    seconds: int,
    core: int,
    workdir: Path,
) -> dict[str, tuple[loadgen.LoadResult, float]]:
    """Load every target at once for `seconds`: per target, wrk's result and the
    gateway's CPU seconds over the run."""

    def one(variant: str) -> tuple[loadgen.LoadResult, float]:
        url, process = targets[variant]
        own = workdir / variant  # wrk's script file, one per concurrent wrk
        own.mkdir(exist_ok=True)
        before = process.cpu_seconds()
        result = loadgen.run_wrk(
            loadgen.Workload(url, ALIAS, mode == "stream"), concurrency, seconds, core, own
        )
        return result, process.cpu_seconds() - before

    with ThreadPoolExecutor(len(targets)) as pool:
        futures = {variant: pool.submit(one, variant) for variant in targets}
        return {variant: future.result() for variant, future in futures.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/telemetry_overhead.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per cell")
    parser.add_argument("--concurrency", default="16,64", help="per gateway")
    parser.add_argument("--modes", default="chat,stream")
    parser.add_argument("--variants", default="default,off", help="of: " + ",".join(TELEMETRY))
    parser.add_argument(
        "--alternate", action="store_true", help="drive one variant at a time (drifts)"
    )
    parser.add_argument(
        "--log-to",
        choices=("pipe", "file"),
        default="pipe",
        help="pipe: each gateway's stdout (the request log) to a reader on the load core, "
        "as a container runtime takes it; file: straight into a file on this disk",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a source tree of another revision (git worktree): its default telemetry "
        "runs as one more variant, 'baseline', in the same cells",
    )
    parser.add_argument("--gateway-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    args = parser.parse_args(argv)
    problem = preflight_tools(args.gateway_core, args.load_core)
    if problem is not None:
        print(f"cannot run: {problem}", file=sys.stderr)
        return 2
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    modes = args.modes.split(",")
    variants = args.variants.split(",")
    if "off" not in variants or not set(variants) <= set(TELEMETRY):
        parser.error(f"--variants takes some of {', '.join(TELEMETRY)}, 'off' among them")
    if args.baseline is not None and not (args.baseline / "gateway" / "cli.py").is_file():
        parser.error(f"--baseline {args.baseline}: no gateway package there")
    rps: dict[Cell, list[float]] = {}
    cpu_us: dict[Cell, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="gateway-telemetry-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        workdir = Path(tmp)
        vendor_url = start_vendors(group, args.load_core)
        log_core = args.load_core if args.log_to == "pipe" else None
        gateways = {
            variant: start_gateway(
                group, args.gateway_core, vendor_url, variant, variant, log_core=log_core
            )
            for variant in variants
        }
        if args.baseline is not None:
            gateways["baseline"] = start_gateway(
                group, args.gateway_core, vendor_url, "default", "baseline", log_core=log_core,
                source=args.baseline.resolve(),
            )  # fmt: skip
            variants = [*variants, "baseline"]
        for mode in modes:  # warm every gateway up
            drive(gateways, mode, 16, 2, args.load_core, workdir)
        for round_no in range(args.rounds):
            for mode in modes:
                for concurrency in concurrencies:
                    # --alternate: one variant after another, the order reversed each round
                    order = variants if round_no % 2 == 0 else variants[::-1]
                    batches = [[v] for v in order] if args.alternate else [variants]
                    results = {}
                    for batch in batches:
                        targets = {v: gateways[v] for v in batch}
                        results |= drive(
                            targets, mode, concurrency, args.duration, args.load_core, workdir
                        )
                    for variant, (result, cpu) in results.items():
                        if result.errors or not result.requests:
                            print(f"{result.errors} errors in {mode} c{concurrency} {variant}")
                            return 1
                        key = (mode, concurrency, variant)
                        rps.setdefault(key, []).append(result.rps)
                        cpu_us.setdefault(key, []).append(1e6 * cpu / result.requests)
                        print(
                            f"  round {round_no + 1} {mode:6} c={concurrency:<3} "
                            f"telemetry {variant:7} {result.rps:8,.0f} rps "
                            f"{cpu_us[key][-1]:6.1f} us CPU/request",
                            file=sys.stderr,
                            flush=True,
                        )
    measured = [v for v in variants if v != "off"]
    how = "one at a time" if args.alternate else "all at once, sharing one core"
    print(
        f"{args.rounds} rounds of {args.duration} s per cell, variants driven {how}, "
        f"request log into a {args.log_to}\n"
    )
    print(table("rps", rps, modes, concurrencies, measured, lower_is_better=False))
    print()
    print(table("us CPU/request", cpu_us, modes, concurrencies, measured, lower_is_better=True))
    return 0


if __name__ == "__main__":
    exit_with(main)
