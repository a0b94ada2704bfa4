"""The load generator: wrk, one thread on the load core, a Lua script per workload.

wrk is C on an epoll loop, so on one core it outruns any Python client by far; the
direct-to-vendor runs measure the ceiling of generator + vendor on that core. The Lua
script POSTs a fixed body, checks every answer (status 200, and a chat completion's
`choices` or a stream's final `data: [DONE]`), and prints its figures as one JSON line:
latency percentiles come from wrk's microsecond histogram.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "
PROMPT = "Say hello to the benchmark."
REQUEST_TIMEOUT_S = 5

_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
local marker = [==[{marker}]==]
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, marker, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    '{prefix}{{"requests":%d,"duration_us":%d,"bad":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, b, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


class LoadGenError(RuntimeError):
    pass


@dataclass(frozen=True)
class Workload:
    url: str
    model: str
    stream: bool

    def body(self) -> str:
        payload: dict[str, object] = {
            "model": self.model,
            "messages": [{"role": "user", "content": PROMPT}],
        }
        if self.stream:
            payload["stream"] = True
        return json.dumps(payload, separators=(",", ":"))

    def script(self) -> str:
        marker = "data: [DONE]" if self.stream else '"choices"'
        return _SCRIPT.format(body=self.body(), marker=marker, prefix=RESULT_PREFIX)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int  # socket errors, timeouts, non-200 answers and answers that fail the check
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    workload: Workload, concurrency: int, seconds: int, core: int, workdir: Path
) -> LoadResult:
    """One closed-loop wrk run of `seconds` with `concurrency` connections, pinned to `core`."""
    wrk = wrk_path()
    if wrk is None:
        raise LoadGenError("wrk is not installed: apt-get install -y wrk")
    script = workdir / f"{'stream' if workload.stream else 'chat'}-{workload.model}.lua"
    script.write_text(workload.script())
    argv = [
        "taskset",
        "-c",
        str(core),
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "-s",
        str(script),
        workload.url,
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise LoadGenError(f"wrk did not finish within {seconds + 30}s") from exc
    return parse_output(done.stdout, done.stderr)


def parse_output(stdout: str, stderr: str = "") -> LoadResult:
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            raw = json.loads(line[len(RESULT_PREFIX) :])
            return LoadResult(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                errors=raw["bad"] + raw["socket_errors"] + raw["timeouts"],
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
            )
    raise LoadGenError(f"wrk printed no result:\n{stdout[-2000:]}\n{stderr[-2000:]}")
