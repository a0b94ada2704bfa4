"""The PNG timeline an SRE pastes into an incident review.

Four panels over the same seconds: success rate, latency percentiles, requests by
outcome (which vendor served, clean errors, lost), and per vendor two lanes: its fault
and the gateway's breaker view of it. Fault windows are shaded across the top panels.
Drawn with the Agg canvas directly (no pyplot, so no global figure state).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from gateway.chaos.probe import Sample
from gateway.chaos.report import Report
from gateway.chaos.timeline import describe

VENDOR_COLORS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
STATE_COLORS = {
    "available": "#4caf50",
    "half_open": "#ff9800",
    "half_open_busy": "#ff9800",
    "breaker_open": "#d32f2f",
    "cooling_down": "#fbc02d",
    "drained": "#9e9e9e",
    "disabled": "#616161",
    "ejected": "#6d4c41",
}
FAULT_COLOR = "#7b1fa2"


def draw(report: Report, path: Path) -> Path:
    result = report.result
    vendors = list(result.scenario.vendor_names)
    fig = Figure(figsize=(12, 9.5 + 0.5 * len(vendors)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[1.0, 1.1, 1.0, 0.45 * len(vendors) + 0.3])
    colors = {v: VENDOR_COLORS[i % len(VENDOR_COLORS)] for i, v in enumerate(vendors)}
    ts = [s.t + 0.5 for s in report.seconds]
    _success(axes[0], report, ts)
    _latency(axes[1], report, ts)
    _served(axes[2], report, ts, vendors, colors)
    _lanes(axes[3], report, vendors)
    for ax in axes[:3]:
        for w in result.timeline:
            ax.axvspan(w.start, w.end, color=FAULT_COLOR, alpha=0.08, lw=0, zorder=0)
    axes[3].set_xlim(0, max(1.0, result.plan.duration))
    axes[3].set_xlabel("seconds since the load started")
    verdict = "PASS" if report.passed else "FAIL"
    figures = "\n".join(
        textwrap.wrap(
            "   ".join(f"{s.name}: {s.measured}" for s in report.slos if s.measured != "n/a"),
            width=140,
        )
    )
    fig.suptitle(
        f"chaos scenario '{result.scenario.name}' ({result.profile} profile): {verdict}  -  "
        f"{result.plan.rate:g} req/s, {result.plan.stream_share:.0%} streaming, "
        f"primary {result.scenario.primary}\n{figures}",
        fontsize=10,
        color="#1b5e20" if report.passed else "#b71c1c",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _success(ax: Axes, report: Report, ts: Sequence[float]) -> None:
    rates = [
        s.success_rate * 100 if s.success_rate is not None else float("nan") for s in report.seconds
    ]
    ax.plot(ts, rates, marker="o", ms=3, color="#1b5e20", label="complete answers")
    ax.set_ylim(-5, 105)
    ax.set_ylabel("success %")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)


def _latency(ax: Axes, report: Report, ts: Sequence[float]) -> None:
    for key, color in (("p50_ms", "#90caf9"), ("p90_ms", "#1e88e5"), ("p99_ms", "#0d47a1")):
        values = [getattr(s, key) for s in report.seconds]
        points = [(t, v) for t, v in zip(ts, values, strict=True) if v is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", color=color, label=key[:3])
    ax.set_yscale("log")
    ax.set_ylabel("latency ms")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize=8)


def _served(
    ax: Axes, report: Report, ts: Sequence[float], vendors: list[str], colors: dict[str, str]
) -> None:
    bottom = [0.0] * len(ts)
    stacks = [(v, [s.served.get(v, 0) for s in report.seconds], colors[v]) for v in vendors]
    stacks.append(("clean error", [s.clean_errors for s in report.seconds], "#bdbdbd"))
    stacks.append(("LOST", [s.lost for s in report.seconds], "#000000"))
    for label, counts, color in stacks:
        if not any(counts) and label in ("clean error", "LOST"):
            continue
        ax.bar(ts, counts, width=0.9, bottom=bottom, color=color, label=label, zorder=2)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_ylabel("requests by outcome")
    ax.legend(loc="upper left", fontsize=8, ncols=len(stacks))
    ax.grid(alpha=0.3, axis="y")


def _lanes(ax: Axes, report: Report, vendors: list[str]) -> None:
    result = report.result
    labels, ticks = [], []
    for i, v in enumerate(reversed(vendors)):
        base = i * 2
        for w in (w for w in result.timeline if w.vendor == v):
            ax.broken_barh([(w.start, w.end - w.start)], (base + 1.05, 0.8), color=FAULT_COLOR)
            ax.text(
                w.start + 0.05,
                base + 1.45,
                describe(w.fault),
                va="center",
                fontsize=7,
                color="white",
                clip_on=True,
            )
        for start, end, state in _state_spans(result.samples, v, result.plan.duration):
            ax.broken_barh(
                [(start, end - start)], (base + 0.1, 0.8), color=STATE_COLORS.get(state, "#bdbdbd")
            )
        labels += [f"{v} breaker", f"{v} fault"]
        ticks += [base + 0.5, base + 1.45]
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_ylim(0, 2 * len(vendors))
    handles = [
        Patch(color=c, label=s)
        for s, c in STATE_COLORS.items()
        if s in _seen_states(result.samples)
    ]
    handles.append(Patch(color=FAULT_COLOR, label="fault"))
    ax.legend(handles=handles, loc="upper right", fontsize=7, ncols=len(handles))


def _seen_states(samples: Sequence[Sample]) -> set[str]:
    return {state for s in samples for state in s.breakers.values()}


def _state_spans(
    samples: Sequence[Sample], vendor: str, end: float
) -> list[tuple[float, float, str]]:
    """Consecutive samples with the same state merged into (start, end, state) spans."""
    spans: list[tuple[float, float, str]] = []
    for s in samples:
        state = s.breakers.get(vendor)
        if state is None:
            continue
        if spans and spans[-1][2] == state:
            spans[-1] = (spans[-1][0], s.t, state)
        else:
            if spans:
                spans[-1] = (spans[-1][0], s.t, spans[-1][2])
            spans.append((s.t, s.t, state))
    if spans:
        spans[-1] = (spans[-1][0], max(spans[-1][1], min(end, spans[-1][1] + 0.25)), spans[-1][2])
    return spans
