"""A run's report: SLO results and per-second series, as JSON for machines and files on disk.

The JSON holds everything the plot and the terminal table show, and every request's
record, so a report can be re-read, diffed between runs, or plotted again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.chaos import slo
from gateway.chaos.runner import RunResult
from gateway.chaos.series import Second, per_second
from gateway.chaos.timeline import describe

FAILURES_SHOWN = 100


@dataclass(frozen=True)
class Report:
    result: RunResult
    slos: list[slo.SLOResult]
    seconds: list[Second]

    @property
    def passed(self) -> bool:
        return slo.passed(self.slos)

    @property
    def name(self) -> str:
        return f"{self.result.scenario.name}-{self.result.profile}"


def build(result: RunResult) -> Report:
    scenario = result.scenario
    results = slo.evaluate(
        scenario.slo,
        result.records,
        result.issued,
        result.timeline,
        result.samples,
        scenario.primary,
    )
    seconds = per_second(
        result.records, result.samples, scenario.vendor_names, result.plan.duration
    )
    return Report(result, results, seconds)


def to_json(report: Report) -> dict[str, Any]:
    result = report.result
    records = sorted(result.records, key=lambda r: r.index)
    verdicts = Counter(r.verdict.value for r in records)
    served = Counter(r.provider for r in records if r.ok and r.provider)
    return {
        "scenario": result.scenario.name,
        "description": result.scenario.description,
        "profile": result.profile,
        "passed": report.passed,
        "started_at": result.started_at.isoformat(),
        "elapsed_s": round(result.elapsed, 3),
        "gateway_url": result.target_url,
        "primary": result.scenario.primary,
        "vendors": list(result.scenario.vendor_names),
        "load": asdict(result.plan),
        "totals": {
            "issued": result.issued,
            "ended": len(records),
            "verdicts": dict(verdicts),
            "served_by": dict(served),
            "streaming": sum(r.stream for r in records),
        },
        "slos": [asdict(s) for s in report.slos],
        "faults": [
            {
                "vendor": w.vendor,
                "start": w.start,
                "end": w.end,
                "fault": describe(w.fault),
                "event": w.event,
            }
            for w in result.timeline
        ],
        "seconds": [s.to_json() for s in report.seconds],
        "samples": [s.to_json() for s in result.samples],
        "failures": [r.to_json() for r in records if not r.ok][:FAILURES_SHOWN],
        "requests": [r.to_json() for r in records],
    }


def write_json(report: Report, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report.name}.json"
    path.write_bytes(orjson.dumps(to_json(report), option=orjson.OPT_INDENT_2))
    return path
