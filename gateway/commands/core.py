"""`gateway serve` and `gateway check`."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gateway.config import LoadedConfig, load_file
from gateway.errors import ConfigError
from gateway.heap import settle
from gateway.routing import build_routes, describe

ConfigOption = typer.Option(Path("providers.yaml"), "--config", "-c", help="path to providers.yaml")


def load_or_exit(path: Path, console: Console) -> LoadedConfig:
    try:
        return load_file(path)
    except ConfigError as exc:
        console.print(f"[bold red]Invalid config[/] {exc.source}:")
        for problem in exc.problems:
            console.print(f"  - {problem}", markup=False)
        raise typer.Exit(2) from None


def print_table(loaded: LoadedConfig, console: Console) -> None:
    table = Table(title=f"Routing table ({loaded.source}, version {loaded.digest})")
    for column in ("model alias", "#", "deployment", "tier", "weight", "context", "provider"):
        table.add_column(column)
    for alias, position, deployment, tier, weight, window in describe(build_routes(loaded.config)):
        provider = deployment.split("/", 1)[0]
        why = loaded.disabled.get(provider)
        state = "[red]disabled[/]" if why else "[green]enabled[/]"
        table.add_row(alias, str(position), deployment, tier, f"{weight:g}", window, state)
    console.print(table)
    for provider, why in loaded.disabled.items():
        console.print(f"[yellow]provider '{provider}' is disabled: {why}[/]")


def admin_socket(
    loaded: LoadedConfig, host: str | None, port: int | None, console: Console
) -> list[socket.socket]:
    """The admin API's listening socket, when a port is set (flag or admin.port)."""
    from gateway.server import PortUnavailable, bind

    admin = loaded.config.admin
    port = admin.port if port is None else port
    if port is None:
        console.print("admin API off (set --admin-port or admin.port to turn it on)")
        return []
    host = host or admin.host
    try:
        sock = bind(host, port, "--admin-port (or admin.port in the config)")
    except PortUnavailable as exc:
        console.print(f"[bold red]Cannot start the admin API:[/] {exc}")
        raise typer.Exit(2) from None
    tokens = ", ".join(admin.tokens.values())
    if not any(os.environ.get(var) for var in admin.tokens.values()):
        console.print(f"[yellow]admin API refuses every call: set {tokens} to a secret token[/]")
    console.print(f"admin API on http://{host}:{sock.getsockname()[1]}/admin (token: {tokens})")
    return [sock]


def register(app: typer.Typer) -> None:
    @app.command()
    def check(config: Path = typer.Argument(Path("providers.yaml"))) -> None:
        """Validate a config and print the routing table, without starting anything."""
        console = Console()
        print_table(load_or_exit(config, console), console)
        console.print("[green]config is valid[/]")

    @app.command()
    def serve(
        config: Path = ConfigOption,
        host: str | None = typer.Option(None, help="listen address (default: server.host)"),
        port: int | None = typer.Option(None, help="listen port (default: server.port)"),
        admin_port: int | None = typer.Option(
            None, help="admin API port (default: admin.port; off when neither is set)"
        ),
        admin_host: str | None = typer.Option(
            None, help="admin API listen address (default: admin.host, 127.0.0.1)"
        ),
        watch: bool = typer.Option(True, help="reload providers.yaml when it changes"),
        log_level: str = typer.Option("warning", help="uvicorn log level"),
    ) -> None:
        """Serve the OpenAI-compatible API on uvicorn (uvloop + httptools)."""
        from gateway.server import PortUnavailable, bind, build_server

        console = Console(stderr=True)
        loaded = load_or_exit(config, console)
        for provider, why in loaded.disabled.items():
            console.print(f"[yellow]provider '{provider}' disabled: {why}[/]")
        server = loaded.config.server
        listen_host, listen_port = host or server.host, server.port if port is None else port
        try:
            sock = bind(listen_host, listen_port)
        except PortUnavailable as exc:
            console.print(f"[bold red]Cannot start:[/] {exc}")
            raise typer.Exit(2) from None
        console.print(f"gateway listening on http://{listen_host}:{listen_port}/v1")
        sockets = [sock, *admin_socket(loaded, admin_host, admin_port, console)]
        uvicorn_server = build_server(
            loaded,
            log_level,
            config_path=config,
            admin_port=sockets[1].getsockname()[1] if len(sockets) > 1 else None,
            watch=watch,
        )
        settle()  # last before serving: all that start-up built is long-lived
        uvicorn_server.run(sockets=sockets)
