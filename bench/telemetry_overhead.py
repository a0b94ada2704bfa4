"""What telemetry costs in throughput: a gateway with it on against one with it off.

    .venv/bin/python bench/telemetry_overhead.py [--rounds 3] [--duration 8] [--variants ...]

One gateway per variant runs, all pinned to the same core (only one is driven at a
time), in front of the same simulated vendors; wrk and the vendors share the other core.
Cells go through the variants in turn, the order reversed every other round, for
`--rounds` rounds, so drift on a shared VM (another tenant, a warming cache) falls on
every side alike; the figure per cell is the median. Two measures: requests per second
(what the issue's budget names) and the gateway's CPU time per request, which another
process on the machine does not move (it moves requests per second by 5-10% here).
Variants: "default" is the config's
defaults (metrics, request-log lines on stdout, no tracing exporter); "no-logs" is
metrics without request-log lines; "off" is `telemetry.enabled: false`. Each variant's
cost is its throughput below "off".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import loadgen
from processes import ProcessGroup

from bench import ALIAS, TELEMETRY, exit_with, preflight_tools, start_gateway, start_vendors


def table(
    unit: str,
    figures: dict[tuple[str, int, str], list[float]],
    modes: list[str],
    concurrencies: list[int],
    measured: list[str],
    lower_is_better: bool,
) -> str:
    """Markdown: the median per cell, and each variant's cost against "off" in percent."""
    lines = [
        f"| mode | conc | off {unit} | "
        + " | ".join(f"{v} {unit} (cost)" for v in measured)
        + " |",
        "|---|---|---|" + "---|" * len(measured),
    ]
    digits = 1 if lower_is_better else 0  # microseconds with a decimal, rps without
    for mode in modes:
        for concurrency in concurrencies:
            off = statistics.median(figures[(mode, concurrency, "off")])
            cells = []
            for variant in measured:
                on = statistics.median(figures[(mode, concurrency, variant)])
                cost = on / off - 1 if lower_is_better else 1 - on / off
                cells.append(f"{on:,.{digits}f} ({cost:.1%})")
            row = f"| {mode} | {concurrency} | {off:,.{digits}f} | " + " | ".join(cells) + " |"
            lines.append(row)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/telemetry_overhead.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per cell")
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--modes", default="chat,stream")
    parser.add_argument("--variants", default="default,off", help="of: " + ",".join(TELEMETRY))
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
    rps: dict[tuple[str, int, str], list[float]] = {}
    cpu_us: dict[tuple[str, int, str], list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="gateway-telemetry-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        vendor_url = start_vendors(group, args.load_core)
        gateways = {
            variant: start_gateway(group, args.gateway_core, vendor_url, variant, variant)
            for variant in variants
        }
        urls = {variant: url for variant, (url, _) in gateways.items()}
        for mode in modes:  # warm both up
            for url in urls.values():
                workload = loadgen.Workload(url, ALIAS, mode == "stream")
                loadgen.run_wrk(workload, 16, 2, args.load_core, Path(tmp))
        for round_no in range(args.rounds):
            for mode in modes:
                for concurrency in concurrencies:
                    for telemetry in variants if round_no % 2 == 0 else variants[::-1]:
                        workload = loadgen.Workload(urls[telemetry], ALIAS, mode == "stream")
                        process = gateways[telemetry][1]
                        cpu_before = process.cpu_seconds()
                        result = loadgen.run_wrk(
                            workload, concurrency, args.duration, args.load_core, Path(tmp)
                        )
                        cpu = process.cpu_seconds() - cpu_before
                        if result.errors:
                            print(f"{result.errors} errors in {mode} c{concurrency} {telemetry}")
                            return 1
                        key = (mode, concurrency, telemetry)
                        rps.setdefault(key, []).append(result.rps)
                        cpu_us.setdefault(key, []).append(1e6 * cpu / max(result.requests, 1))
                        print(
                            f"  round {round_no + 1} {mode:6} c={concurrency:<3} "
                            f"telemetry {telemetry:7} {result.rps:8,.0f} rps "
                            f"{cpu_us[key][-1]:6.1f} us CPU/request",
                            file=sys.stderr,
                            flush=True,
                        )
    measured = [v for v in variants if v != "off"]
    print(table("rps", rps, modes, concurrencies, measured, lower_is_better=False))
    print()
    print(table("us CPU/request", cpu_us, modes, concurrencies, measured, lower_is_better=True))
    return 0


if __name__ == "__main__":
    exit_with(main)
