"""Where the gateway's CPU goes under load: py-spy samples it while wrk drives one cell.

    .venv/bin/pip install py-spy     # a profiling tool only, not a project dependency
    .venv/bin/python bench/profile.py [--mode chat|stream] [--concurrency 64] [--duration 10]

Prints the functions with the most samples (own time, and time including callees) and
keeps py-spy's collapsed stacks (`--raw`) for a flame graph.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import loadgen
from processes import ProcessGroup, StartupError

from bench import ALIAS, start_gateway, start_vendors


def hot_spots(collapsed: str, top: int) -> str:
    """Own-time and inclusive-time rankings from py-spy's collapsed (`raw`) stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "including callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/profile.py", description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("chat", "stream"), default="chat")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--raw", type=Path, default=None, help="keep the collapsed stacks here")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is missing: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="gateway-profile-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        vendor_url = start_vendors(group, 1)
        url, gateway = start_gateway(group, 0, vendor_url)
        workload = loadgen.Workload(url, ALIAS, args.mode == "stream")
        loadgen.run_wrk(workload, 16, 2, 1, Path(tmp))  # warm-up
        raw = Path(tmp) / "stacks.txt"
        load = threading.Thread(
            target=loadgen.run_wrk,
            args=(workload, args.concurrency, args.duration + 2, 1, Path(tmp)),
        )
        load.start()
        subprocess.run(
            [
                "taskset",
                "-c",
                "1",
                py_spy,
                "record",
                "--pid",
                str(gateway.pid),
                "--duration",
                str(args.duration),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(raw),
            ],
            check=True,
            capture_output=True,
            timeout=args.duration + 60,
        )
        load.join()
        stacks = raw.read_text()
    if args.raw is not None:
        args.raw.write_text(stacks)
    print(hot_spots(stacks, args.top))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except StartupError as exc:
        print(f"profiling failed: {exc}", file=sys.stderr)
        sys.exit(2)
