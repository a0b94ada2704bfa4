"""The benchmark's processes: each pinned to a core, in its own session, always stopped.

`Pinned` wraps one child started under `taskset -c <core>`; `ProcessGroup` owns every
child of a run and stops them all on exit, error or Ctrl-C (SIGTERM, then SIGKILL).
`cpu_seconds` and `rss_bytes` read /proc, so they count every thread of the child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT = 5.0


class StartupError(RuntimeError):
    """A child did not come up; the message carries the tail of its output."""


@dataclass
class Pinned:
    name: str
    core: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process so far (/proc/<pid>/stat)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def output_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)


def _signal_group(pid: int, signum: int) -> None:
    # Each child leads its own session (start_new_session), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


class ProcessGroup:
    """Every child of one benchmark run; `with ProcessGroup(dir) as group:` stops them all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Pinned] = []

    def start(
        self, name: str, core: int, argv: Sequence[str], log_core: int | None = None
    ) -> Pinned:
        """Start `argv` pinned to `core`, its output in `<name>.log`. With `log_core`, the
        output goes through a pipe to a `cat` pinned there that writes the file, as a
        container runtime's log shim takes a pod's stdout: the child pays for a pipe
        write, not for the file system."""
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            output: Any = out
            if log_core is not None:
                shim = subprocess.Popen(
                    ["taskset", "-c", str(log_core), "cat"],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    start_new_session=True,
                )
                self.children.append(Pinned(f"{name}-log", log_core, shim, log))
                output = shim.stdin
            process = subprocess.Popen(
                ["taskset", "-c", str(core), *argv],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            if log_core is not None:
                output.close()  # the child holds the pipe now; cat ends when it does
        child = Pinned(name, core, process, log)
        self.children.append(child)  # stopped before its shim (children stop in reverse)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def __enter__(self) -> ProcessGroup:
        # A SIGTERM to the bench must still run the cleanup in __exit__.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def free_port() -> int:
    """A loopback port free right now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(child: Pinned, prefix: str, timeout: float) -> str:
    """The first line of the child's output starting with `prefix`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in child.log.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if not child.alive():
            break
        time.sleep(0.05)
    raise StartupError(f"{child.name} did not start:\n{child.output_tail()}")
