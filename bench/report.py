"""Benchmark figures: one `Cell` per (target, mode, concurrency), compared and rendered as
a text table, markdown and JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SATURATED = 0.9  # a core this busy is the bottleneck


@dataclass(frozen=True)
class Cell:
    target: str  # "direct" | "gateway"
    mode: str  # "chat" | "stream"
    concurrency: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    gateway_core_busy: float  # fraction of the gateway's core in use (any process)
    load_core_busy: float  # fraction of the load core (wrk + vendors) in use
    gateway_cpu_ms_per_request: float | None = None  # gateway process only
    gateway_cpu_share: float | None = None  # gateway process CPU / wall time
    gateway_rss_mb: float | None = None


@dataclass(frozen=True)
class Comparison:
    mode: str
    concurrency: int
    direct: Cell | None
    gateway: Cell | None
    relay: Cell | None = None  # a bare TCP relay on the gateway's core

    @property
    def over_relay_p50_ms(self) -> float | None:
        """What the gateway's own work adds, beyond what any proxy pays on this machine."""
        if self.relay is None or self.gateway is None:
            return None
        return self.gateway.p50_ms - self.relay.p50_ms

    @property
    def over_relay_p99_ms(self) -> float | None:
        if self.relay is None or self.gateway is None:
            return None
        return self.gateway.p99_ms - self.relay.p99_ms

    @property
    def added_p50_ms(self) -> float | None:
        if self.direct is None or self.gateway is None:
            return None
        return self.gateway.p50_ms - self.direct.p50_ms

    @property
    def added_p99_ms(self) -> float | None:
        if self.direct is None or self.gateway is None:
            return None
        return self.gateway.p99_ms - self.direct.p99_ms

    @property
    def bottleneck(self) -> str:
        """Which side limited the gateway run (the direct run is the generator's ceiling)."""
        g = self.gateway
        if g is None:
            return "-"
        if (g.gateway_cpu_share or 0.0) >= SATURATED:
            return "gateway (its core is saturated)"
        if g.load_core_busy >= SATURATED:
            return "load core (wrk + vendor saturated)"
        if g.gateway_core_busy >= SATURATED:
            return "gateway core shared with another process"
        return "latency (no core saturated)"


def compare(cells: list[Cell]) -> list[Comparison]:
    keys = sorted({(c.mode, c.concurrency) for c in cells}, key=lambda k: (k[0] != "chat", k))
    found = {(c.target, c.mode, c.concurrency): c for c in cells}
    return [
        Comparison(
            mode,
            n,
            found.get(("direct", mode, n)),
            found.get(("gateway", mode, n)),
            found.get(("relay", mode, n)),
        )
        for mode, n in keys
    ]


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


HEADERS = (
    "mode",
    "conc",
    "direct rps",
    "gateway rps",
    "gw CPU ms/req",
    "gw CPU",
    "p50 ms direct/relay/gw",
    "p99 ms direct/relay/gw",
    "added p50/p99 ms",
    "gw-relay p50/p99 ms",
    "errors",
    "gw RSS MB",
    "load core",
    "bottleneck",
)


def _triple(cells: tuple[Cell | None, ...], field: str) -> str:
    return "/".join(_f(getattr(c, field), 3) if c else "-" for c in cells)


def rows(comparisons: list[Comparison]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for c in comparisons:
        d, g = c.direct, c.gateway
        errors = sum(x.errors for x in (d, c.relay, g) if x)
        share = g.gateway_cpu_share if g else None
        out.append(
            (
                c.mode,
                str(c.concurrency),
                _f(d.rps if d else None, 0),
                _f(g.rps if g else None, 0),
                _f(g.gateway_cpu_ms_per_request if g else None, 3),
                f"{100 * share:.0f}%" if share is not None else "-",
                _triple((d, c.relay, g), "p50_ms"),
                _triple((d, c.relay, g), "p99_ms"),
                f"{_f(c.added_p50_ms, 3)}/{_f(c.added_p99_ms, 3)}",
                f"{_f(c.over_relay_p50_ms, 3)}/{_f(c.over_relay_p99_ms, 3)}",
                str(errors),
                _f(g.gateway_rss_mb if g else None, 0),
                f"{100 * g.load_core_busy:.0f}%" if g else "-",
                c.bottleneck,
            )
        )
    return out


def text_table(comparisons: list[Comparison]) -> str:
    table = [HEADERS, *rows(comparisons)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(comparisons: list[Comparison]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(comparisons)]
    return "\n".join(lines)


def as_json(cells: list[Cell], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": meta,
        "cells": [asdict(c) for c in cells],
        "comparisons": [
            {
                "mode": c.mode,
                "concurrency": c.concurrency,
                "direct_rps": c.direct.rps if c.direct else None,
                "gateway_rps": c.gateway.rps if c.gateway else None,
                "gateway_cpu_ms_per_request": c.gateway.gateway_cpu_ms_per_request
                if c.gateway
                else None,
                "added_p50_ms": c.added_p50_ms,
                "added_p99_ms": c.added_p99_ms,
                "over_relay_p50_ms": c.over_relay_p50_ms,
                "over_relay_p99_ms": c.over_relay_p99_ms,
                "bottleneck": c.bottleneck,
            }
            for c in compare(cells)
        ],
    }
