"""`gateway status` and `gateway explain <alias>`: ask a running gateway over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

UrlOption = typer.Option("http://127.0.0.1:8080", "--url", help="the running gateway's URL")
JsonOption = typer.Option(False, "--json", help="print the raw JSON instead of a table")
STATE_STYLE = {
    "healthy": "green",
    "half_open": "yellow",
    "cooling_down": "yellow",
    "ejected": "red",
    "breaker_open": "red",
    "drained": "dim",
    "disabled": "dim",
}


def fetch(url: str, path: str, console: Console) -> Any:
    """GET `path` from the gateway; exit 2 with the cause and the fix when that fails."""
    target = url.rstrip("/") + path
    try:
        response = httpx.get(target, timeout=10.0)
    except httpx.HTTPError as exc:
        console.print(
            f"[bold red]No gateway answering at {url}[/] ({type(exc).__name__}): start one "
            "with `gateway serve`, or point --url at it."
        )
        raise typer.Exit(2) from None
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300] or response.reason_phrase
        console.print(f"[bold red]{target} answered {response.status_code}:[/] {message}")
        raise typer.Exit(1)
    return response.json()


def _ms(values: dict[str, Any]) -> str:
    shown = [f"{values[k]:g}" if values.get(k) is not None else "-" for k in ("p50", "p99")]
    return "/".join(shown)


def status_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"Deployments (config {report['config_version']})")
    for column in ("deployment", "state", "why", "since", "success", "calls", "in flight",
                   "latency p50/p99 ms", "TTFT p50/p99 ms", "last error"):  # fmt: skip
        table.add_column(column)
    for row in report["deployments"]:
        rate = row["success_rate"]
        error = row["last_error"]
        state = row["state"]
        table.add_row(
            row["deployment"],
            f"[{STATE_STYLE.get(state, '')}]{state}[/]",
            row["why"] or "-",
            (row["since"] or "-").replace("+00:00", "Z"),
            "-" if rate is None else f"{rate:.1%}",
            f"{row['calls']} ({row['failures']} failed)",
            str(row["in_flight"]),
            _ms(row["latency_ms"]),
            _ms(row["ttft_ms"]),
            "-" if error is None else f"{error['reason']}: {error['message'][:60]}",
        )
    return table


def explain_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"Plan for '{report['alias']}' now: {report['outcome']}")
    for column in ("#", "deployment", "verdict", "tier", "share", "state", "why"):
        table.add_column(column)
    order = {d: i + 1 for i, d in enumerate(report["will_try"])}
    for step in report["steps"]:
        verdict = step["verdict"]
        style = {"candidate": "green", "demoted": "yellow"}.get(verdict, "red")
        table.add_row(
            str(order.get(step["deployment"], "-")),
            step["deployment"],
            f"[{style}]{verdict}[/]",
            str(step["tier"]),
            f"{step['tier_share']:.0%}",
            step["state"],
            step["why"],
        )
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def status(url: str = UrlOption, as_json: bool = JsonOption) -> None:
        """Every deployment's health, as a running gateway sees it now."""
        console = Console()
        report = fetch(url, "/v1/gateway/status", console)
        if as_json:
            console.print_json(json.dumps(report))
            return
        console.print(status_table(report))
        for alias, counts in report["aliases"].items():
            if counts["routable"] == 0:
                console.print(f"[bold red]every deployment of '{alias}' is unavailable[/]")

    @app.command()
    def explain(
        alias: str = typer.Argument(..., help="a model alias from the config's routes"),
        url: str = UrlOption,
        as_json: bool = JsonOption,
    ) -> None:
        """The plan a request to ALIAS would follow right now, and why."""
        console = Console()
        report = fetch(url, f"/v1/gateway/explain/{alias}", console)
        if as_json:
            console.print_json(json.dumps(report))
            return
        console.print(explain_table(report))
