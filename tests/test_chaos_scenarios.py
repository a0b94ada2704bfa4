"""CI: every scenario of the library, in its short profile, against a real gateway.

Each run starts its simulated vendors and a gateway on loopback, drives the scenario's
load while its fault timeline plays, and must meet the scenario's own SLOs. On top of
those, the gateway's promise for every scenario:

- every request ends exactly once, with a complete answer or a clean OpenAI-format error;
  no stream ends as a silent truncation, no request hangs;
- with one healthy fallback (a fault on one vendor at a time), every non-streaming
  request succeeds, and the fault really happened (traffic moved to the fallback).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gateway.chaos import plot, report, runner
from gateway.chaos.library import scenario_paths
from gateway.chaos.load import plan_requests
from gateway.chaos.scenario import ALL_VENDORS, Scenario, load_file
from gateway.chaos.verdict import Verdict

pytestmark = pytest.mark.timeout(90)


def single_vendor_faults(scenario: Scenario) -> bool:
    return (
        bool(scenario.faults)
        and len({e.vendor for e in scenario.faults}) == 1
        and all(e.vendor != ALL_VENDORS for e in scenario.faults)
    )


def explain(built: report.Report, directory: Path) -> str:
    json_path = report.write_json(built, directory)
    png_path = plot.draw(built, directory / f"{built.name}.png")
    lines = [f"{s.name}: {s.measured} (target {s.target}) {s.detail}" for s in built.slos]
    bad = [r for r in built.result.records if not r.ok][:8]
    lines += [f"  #{r.index} {r.verdict.value} {r.route} {r.detail[:160]}" for r in bad]
    return "\n".join([*lines, f"report: {json_path}", f"plot: {png_path}"])


def only_latency_missed(built: report.Report) -> bool:
    missed = [s for s in built.slos if s.passed is False]
    return bool(missed) and all(s.name == "p99 latency" for s in missed)


@pytest.mark.parametrize("path", scenario_paths(), ids=lambda p: p.stem)
async def test_scenario_meets_its_slos(path: Path, tmp_path: Path) -> None:
    scenario = load_file(path)
    result = await runner.run(scenario, "short")
    built = report.build(result)
    if only_latency_missed(built):
        # p99 latency is the one SLO that moves with the machine's other load (this is a
        # shared 2-core box); it gets one more run. Correctness SLOs never get a second try.
        result = await runner.run(scenario, "short")
        built = report.build(result)
    why = explain(built, tmp_path) if not built.passed else ""
    assert built.passed, f"{scenario.name} missed an SLO:\n{why}"

    planned = len(plan_requests(result.plan))
    verdicts = Counter(r.verdict for r in result.records)
    assert result.issued == planned == len(result.records)
    assert len({r.index for r in result.records}) == planned, "a request ended twice"
    assert set(verdicts) <= {Verdict.COMPLETE, Verdict.CLEAN_ERROR}, verdicts
    assert any(r.stream for r in result.records) and any(not r.stream for r in result.records)

    if single_vendor_faults(scenario):
        failed = [r for r in result.records if not r.stream and not r.ok]
        assert not failed, f"non-streaming requests failed with a healthy fallback: {failed[:3]}"
        faulted = scenario.faults[0].vendor
        moved = [r for r in result.records if r.ok and r.provider not in (None, faulted)]
        assert moved, "the fault never moved traffic: did it happen at all?"
        assert any(faulted in (r.route or "") and "=ok" not in r.route.split(",")[0]
                   for r in result.records), "no request saw the fault"  # fmt: skip
    else:
        assert verdicts[Verdict.CLEAN_ERROR] > 0, "every vendor was down, yet nothing failed?"
