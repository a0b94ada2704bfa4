"""The terminal side of a run: a live progress line while it runs, tables when it is done."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.chaos.report import Report


class RichProgress:
    """Implements runner.Progress: a bar over the load's duration, with live counts and
    the faults in force."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("[bold]{task.fields[name]}"),
            BarColumn(),
            TextColumn("{task.completed:>5.1f}/{task.total:g}s"),
            TextColumn("{task.fields[counts]}"),
            TextColumn("[red]{task.fields[faults]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def begin(self, scenario: str, duration: float, requests: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(
            "run", total=duration, name=scenario, counts=f"0/{requests} sent", faults=""
        )

    def update(self, t: float, done: int, ok: int, faults: Mapping[str, str | None]) -> None:
        if self._task is None:
            return
        active = ", ".join(f"{v}: {label}" for v, label in faults.items() if label)
        failed = done - ok
        counts = f"{done} done, [green]{ok} ok[/], " + (
            f"[red]{failed} not ok[/]" if failed else "0 not ok"
        )
        self._progress.update(self._task, completed=t, counts=counts, faults=active)

    def end(self) -> None:
        if self._task is not None:
            total = self._progress.tasks[0].total or 0
            self._progress.update(self._task, completed=total)
        self._progress.stop()


def slo_table(report: Report) -> Table:
    verdict = "[green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    result = report.result
    table = Table(
        title=f"Scenario {result.scenario.name} ({result.profile}): {verdict}",
        caption=f"{len(result.records)} requests over {result.plan.duration:g}s "
        f"at {result.plan.rate:g}/s against {result.target_url}",
    )
    for column in ("SLO", "target", "measured", "", "detail"):
        table.add_column(column)
    for s in report.slos:
        mark = {True: "[green]ok[/]", False: "[bold red]MISSED[/]", None: "[dim]-[/]"}[s.passed]
        table.add_row(s.name, s.target or "[dim]not set[/]", s.measured, mark, s.detail)
    return table


def seconds_table(report: Report) -> Table:
    vendors = report.result.scenario.vendor_names
    table = Table(title="Per second (requests by start time)")
    for column in ("t", "req", "ok %", "p50 ms", "p99 ms", "served by", "faults", "breakers"):
        table.add_column(column, overflow="fold")
    for s in report.seconds:
        rate = "-" if s.success_rate is None else f"{s.success_rate:.0%}"
        served = " ".join(f"{v}:{n}" for v, n in s.served.items() if n)
        faults = " ".join(f"{v}:{label}" for v, label in s.faults.items() if label)
        breakers = " ".join(
            f"{v}:{state}"
            for v in vendors
            if (state := s.breakers.get(v)) not in (None, "available")
        )
        style = "red" if s.lost else ("yellow" if s.success_rate not in (None, 1.0) else "")
        table.add_row(
            str(s.t),
            str(s.requests),
            rate,
            _fmt(s.p50_ms),
            _fmt(s.p99_ms),
            served,
            faults,
            breakers,
            style=style,
        )
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def show(report: Report, console: Console, per_second: bool = True) -> None:
    if per_second:
        console.print(seconds_table(report))
    console.print(slo_table(report))
