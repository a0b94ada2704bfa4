"""`gateway chaos run | list | config`: rehearse vendor outages and gate CI on the SLOs.

Exit status of `run`: 0 when every SLO is met, 1 when one is missed, 2 when the scenario
or the options are wrong (the message names the key path and the fix).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gateway.chaos.scenario import ProfileName, Scenario

SLO_MISSED = 1
BAD_INPUT = 2


def _load(name: str, console: Console) -> Scenario:
    from gateway.chaos.library import resolve
    from gateway.chaos.scenario import load_file
    from gateway.errors import ConfigError

    try:
        return load_file(resolve(name))
    except ConfigError as exc:
        console.print(f"[bold red]Invalid scenario[/] {exc.source}:")
        for problem in exc.problems:
            console.print(f"  - {problem}", markup=False)
        raise typer.Exit(BAD_INPUT) from None


def _run(
    scenario: Scenario, profile: ProfileName, url: str | None, report_dir: Path, console: Console
) -> bool:
    from gateway.chaos import plot, report, runner
    from gateway.chaos.display import RichProgress, show
    from gateway.simulator.fleet import loop_factory

    async def main() -> runner.RunResult:
        return await runner.run(scenario, profile, url=url, progress=RichProgress(console))

    with asyncio.Runner(loop_factory=loop_factory()) as loop:
        result = loop.run(main())
    built = report.build(result)
    show(built, console)
    json_path = report.write_json(built, report_dir)
    png_path = plot.draw(built, report_dir / f"{built.name}.png")
    console.print(f"report: {json_path}  plot: {png_path}")
    return built.passed


def register(app: typer.Typer) -> None:
    chaos = typer.Typer(
        no_args_is_help=True, help="Rehearse vendor outages against the gateway (SLO-gated)."
    )
    app.add_typer(chaos, name="chaos")

    @chaos.command("run")
    def run(
        scenario: str = typer.Argument(..., help="scenario file, or a library name (see list)"),
        url: str | None = typer.Option(
            None, "--url", help="target a running gateway instead of starting one"
        ),
        profile: str = typer.Option("short", "--profile", help="short | full"),
        report_dir: Path = typer.Option(Path("chaos-reports"), "--report-dir"),
    ) -> None:
        """Run a scenario: vendors, gateway, load and faults; exit 1 if an SLO is missed."""
        from gateway.chaos.runner import check_url_mode

        console = Console()
        if profile not in ("short", "full"):
            console.print(
                f"[bold red]--profile:[/] '{profile}' is not a profile; use short or full"
            )
            raise typer.Exit(BAD_INPUT)
        loaded = _load(scenario, console)
        problems = check_url_mode(loaded) if url else []
        for problem in problems:
            console.print(f"[bold red]--url:[/] {problem}", markup=True)
        if problems:
            raise typer.Exit(BAD_INPUT)
        try:
            passed = _run(loaded, profile, url, report_dir, console)  # type: ignore[arg-type]
        except RuntimeError as exc:
            console.print(f"[bold red]Cannot run the scenario:[/] {exc}")
            raise typer.Exit(BAD_INPUT) from None
        except OSError as exc:  # a vendor's fixed port is taken
            console.print(
                f"[bold red]Cannot start the scenario's vendors:[/] {exc.strerror or exc} "
                "(free the port, or pick another in vendors[].port)"
            )
            raise typer.Exit(BAD_INPUT) from None
        if not passed:
            raise typer.Exit(SLO_MISSED)

    @chaos.command("list")
    def list_scenarios() -> None:
        """The library of ready scenarios."""
        from gateway.chaos.library import scenario_paths
        from gateway.chaos.scenario import load_file

        table = Table(title="Chaos scenarios (gateway chaos run NAME)")
        for column in ("name", "faults", "description"):
            table.add_column(column)
        for path in scenario_paths():
            s = load_file(path)
            kinds = sorted({e.fault.kind for e in s.faults})
            first = " ".join(s.description.split()).split(". ")[0].rstrip(".")
            table.add_row(path.stem, ", ".join(kinds), first + ".")
        Console().print(table)

    @chaos.command("config")
    def config(scenario: str = typer.Argument(..., help="scenario file or library name")) -> None:
        """Print the providers.yaml a gateway needs to be the target of `run --url`."""
        from gateway.chaos.runner import check_url_mode
        from gateway.chaos.scenario import dump_config, gateway_config

        console = Console(stderr=True)
        loaded = _load(scenario, console)
        for problem in check_url_mode(loaded):
            console.print(f"[bold red]{problem}[/]")
        if check_url_mode(loaded):
            raise typer.Exit(BAD_INPUT)
        urls = {v.name: v.url or f"http://127.0.0.1:{v.port}" for v in loaded.vendors}
        print(dump_config(gateway_config(loaded, urls)), end="")
