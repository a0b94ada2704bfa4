"""The machine under test: what it is, and how busy each core was over an interval."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CoreTimes:
    busy: dict[int, int]  # core -> busy jiffies
    total: dict[int, int]

    @classmethod
    def sample(cls) -> CoreTimes:
        busy: dict[int, int] = {}
        total: dict[int, int] = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            core = int(name[3:])
            counts = [int(v) for v in values[:8]]
            idle = counts[3] + counts[4]  # idle + iowait
            total[core] = sum(counts)
            busy[core] = total[core] - idle
        return cls(busy, total)

    def busy_since(self, before: CoreTimes, core: int) -> float:
        """Fraction of `core` that was busy between `before` and this sample."""
        elapsed = self.total.get(core, 0) - before.total.get(core, 0)
        if elapsed <= 0:
            return 0.0
        return (self.busy[core] - before.busy[core]) / elapsed


def describe() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
    }
