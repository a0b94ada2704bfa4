"""User-space instructions per request of the gateway, counted by callgrind.

    .venv/bin/python bench/instructions.py [--mode chat|stream] [--telemetry default|off]

Wall-clock figures on a shared 2-core VM move by 5-10% from run to run; instruction
counts do not (the same total twice, whatever else the machine is doing), so this is
the A/B measure for a code change, and for telemetry on against off. The gateway runs
under `valgrind --tool=callgrind`; after a warm-up the counters are zeroed, wrk drives
`--seconds` of load at `--concurrency`, and the dump's total is divided by the number
of requests wrk saw answered. Blind to kernel time: a change that saves system calls
shows up in `strace -c`, not here.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import loadgen
from processes import ProcessGroup

from bench import ALIAS, TELEMETRY, start_gateway, start_vendors

STARTUP_TIMEOUT = 300.0  # imports under valgrind take a minute or more
TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def total_instructions(out: Path) -> int:
    # callgrind writes the dump as <out>.<n> when dumps are asked for while it runs
    dumps = sorted(out.parent.glob(out.name + "*"), key=lambda p: p.stat().st_mtime)
    for dump in reversed(dumps):
        found = TOTALS.search(dump.read_text(errors="replace"))
        if found:
            return int(found.group(1))
    raise RuntimeError(f"no callgrind totals in {[str(d) for d in dumps]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/instructions.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--mode", choices=("chat", "stream"), default="chat")
    parser.add_argument("--telemetry", choices=tuple(TELEMETRY), default="default")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--gateway-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    args = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control", "taskset"):
        if shutil.which(tool) is None:
            print(f"cannot run: {tool} is missing (apt-get install -y valgrind util-linux)")
            return 2
    if loadgen.wrk_path() is None:
        print("cannot run: wrk is missing (apt-get install -y wrk)")
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="gateway-instr-") as tmp,
        ProcessGroup(Path(tmp)) as group,
    ):
        out = Path(tmp) / "callgrind.out"
        vendor_url = start_vendors(group, args.load_core)
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        url, gateway = start_gateway(
            group,
            args.gateway_core,
            vendor_url,
            args.telemetry,
            under=valgrind,
            timeout=STARTUP_TIMEOUT,
        )
        pid = gateway.pid
        workload = loadgen.Workload(url, ALIAS, args.mode == "stream")
        loadgen.run_wrk(workload, args.concurrency, args.warmup, args.load_core, Path(tmp))
        callgrind_control("--zero", str(pid))
        result = loadgen.run_wrk(
            workload, args.concurrency, args.seconds, args.load_core, Path(tmp)
        )
        callgrind_control("--dump", str(pid))
        time.sleep(1.0)
        instructions = total_instructions(out)
    if not result.requests or result.errors:
        print(f"wrk saw {result.requests} requests and {result.errors} errors: no figure")
        return 1
    per_request = instructions / result.requests
    print(
        f"mode={args.mode} telemetry={args.telemetry} requests={result.requests} "
        f"instructions={instructions:,} per_request={per_request / 1e6:.3f}M"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
