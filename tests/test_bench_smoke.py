"""The benchmark runs end to end in a tiny mode and reports sane figures (no speed asserted).

Also table tests for the pure parts: wrk's result line and the direct/gateway comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
import report  # noqa: E402


def _cell(target: str, mode: str, n: int, p50: float, p99: float, **extra: float) -> report.Cell:
    return report.Cell(
        target,
        mode,
        n,
        1.0,
        100,
        100.0,
        p50,
        p99,
        p99,
        0,
        extra.pop("gw_core", 0.5),
        extra.pop("load_core", 0.5),
        **extra,
    )


def test_parse_wrk_result_line() -> None:
    out = (
        "Running 1s test\n"
        'BENCH_RESULT {"requests":2000,"duration_us":1000000,"bad":1,"socket_errors":2,'
        '"timeouts":3,"p50_us":250,"p99_us":1500,"max_us":9000}\n'
    )
    result = loadgen.parse_output(out)
    assert (result.requests, result.errors, result.rps) == (2000, 6, 2000.0)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (0.25, 1.5, 9.0)


def test_missing_wrk_result_is_an_error_that_shows_the_output() -> None:
    with pytest.raises(loadgen.LoadGenError, match="unable to connect"):
        loadgen.parse_output("", "unable to connect to 127.0.0.1:1")


@pytest.mark.parametrize(
    ("gateway", "bottleneck"),
    [
        (_cell("gateway", "chat", 64, 2.0, 5.0, gateway_cpu_share=0.97), "gateway (its core"),
        (_cell("gateway", "chat", 64, 2.0, 5.0, gateway_cpu_share=0.5, load_core=0.95), "load"),
        (
            _cell("gateway", "chat", 64, 2.0, 5.0, gateway_cpu_share=0.5, gw_core=0.95),
            "gateway core shared",
        ),
        (_cell("gateway", "chat", 64, 2.0, 5.0, gateway_cpu_share=0.3), "latency"),
    ],
)
def test_compare_adds_latency_and_names_the_bottleneck(
    gateway: report.Cell, bottleneck: str
) -> None:
    direct = _cell("direct", "chat", 64, 0.5, 1.0)
    relay = _cell("relay", "chat", 64, 0.75, 2.0)
    (comparison,) = report.compare([direct, relay, gateway])
    assert comparison.added_p50_ms == pytest.approx(1.5)
    assert comparison.added_p99_ms == pytest.approx(4.0)
    assert comparison.over_relay_p50_ms == pytest.approx(1.25)
    assert comparison.over_relay_p99_ms == pytest.approx(3.0)
    assert comparison.bottleneck.startswith(bottleneck)
    assert "0.750" in report.text_table([comparison])  # the relay's p50 is shown


def test_workload_scripts_check_the_answer() -> None:
    chat = loadgen.Workload("http://127.0.0.1:1/v1/chat/completions", "m", stream=False)
    stream = loadgen.Workload("http://127.0.0.1:1/v1/chat/completions", "m", stream=True)
    assert json.loads(chat.body()) == {
        "model": "m",
        "messages": [{"role": "user", "content": loadgen.PROMPT}],
    }
    assert json.loads(stream.body())["stream"] is True
    assert '"choices"' in chat.script() and "data: [DONE]" in stream.script()


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk: apt-get install -y wrk")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin to")
def test_bench_runs_end_to_end_and_reports_sane_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    markdown = tmp_path / "bench.md"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench.py"),
            "--duration",
            "1",
            "--warmup",
            "0",
            "--concurrency",
            "4",
            "--json",
            str(out),
            "--markdown",
            str(markdown),
        ],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    cells = {(c["target"], c["mode"]): c for c in figures["cells"]}
    targets = ("direct", "relay", "gateway")
    assert set(cells) == {(t, m) for t in targets for m in ("chat", "stream")}
    for cell in cells.values():
        assert cell["requests"] > 0 and cell["rps"] > 0 and cell["errors"] == 0
        assert 0 < cell["p50_ms"] <= cell["p99_ms"] <= cell["max_ms"]
    for mode in ("chat", "stream"):
        gateway = cells[("gateway", mode)]
        assert gateway["gateway_cpu_ms_per_request"] > 0
        assert gateway["gateway_rss_mb"] > 10
    comparisons = figures["comparisons"]
    assert [(c["mode"], c["concurrency"]) for c in comparisons] == [("chat", 4), ("stream", 4)]
    assert all(c["added_p50_ms"] is not None for c in comparisons)
    assert all(c["over_relay_p50_ms"] is not None for c in comparisons)
    assert "gateway rps" in done.stdout and "| chat | 4 |" in markdown.read_text()
    # every child is gone: no process still names the run's working directory
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, timeout=10)
    assert figures["meta"]["workdir"] not in processes.stdout


@pytest.mark.timeout(90)
@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk: apt-get install -y wrk")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to pin to")
def test_telemetry_overhead_compares_a_gateway_with_telemetry_on_and_off() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "telemetry_overhead.py"),
            "--rounds",
            "1",
            "--duration",
            "1",
            "--concurrency",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| ")]
    rows = [r for r in rows if r[1].strip() in ("chat", "stream")]
    # two tables, requests per second then CPU per request, each with a row per mode
    assert [(r[1].strip(), r[2].strip()) for r in rows] == [("chat", "4"), ("stream", "4")] * 2
    for row in rows:
        off, on = float(row[3].replace(",", "")), row[4].strip()
        assert off > 0 and float(on.split(" ")[0].replace(",", "")) > 0
        assert on.endswith("%)")
    assert "us CPU/request" in done.stdout


@pytest.mark.timeout(90)
def test_telemetry_hooks_times_each_observer_on_a_real_requests_calls() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "telemetry_hooks.py"), "--requests", "2000", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| ")]
    timed = {(r[1].strip(), r[2].strip()): float(r[3]) for r in rows[1:] if r[1].strip() != "---"}
    observers = ("metrics", "metrics + log", "all, through Observers")
    assert set(timed) == {(kind, o) for kind in ("chat", "stream") for o in observers}
    assert all(us > 0 for us in timed.values())
    # the replayed calls are a real request's: started, one served attempt, finished
    assert "request_started, attempt_finished, request_finished" in done.stderr
