"""SRE commands, talking to a running gateway's admin API:

    gateway routes                       aliases, deployments and their live state
    gateway route set ALIAS D1,D2,...    new fallback order (`a+b` puts a and b in one tier)
    gateway route weights ALIAS D=W,...  traffic split inside a tier
    gateway route reset ALIAS            back to the file's order and weights
    gateway drain | enable | disable DEPLOYMENT
    gateway breaker DEPLOYMENT open|closed|auto
    gateway stop-vendor | start-vendor PROVIDER
    gateway audit                        who changed what, when and why
    gateway config diff FILE             what FILE would change against the running config
    gateway config show | status         the effective config (YAML) | reloads, persistence
    gateway reload                       re-read providers.yaml now

`--url` (GATEWAY_ADMIN_URL, default http://127.0.0.1:8081) and `--token`
(GATEWAY_ADMIN_TOKEN). A change reads the current version first and sends it, so a
change someone else made in between is refused (409), never overwritten.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from gateway.control.audit import AuditEntry, describe

Url = typer.Option(
    "http://127.0.0.1:8081", "--url", envvar="GATEWAY_ADMIN_URL", help="admin API base URL"
)
Token = typer.Option(
    "",
    "--token",
    envvar="GATEWAY_ADMIN_TOKEN",
    show_default=False,
    help="admin bearer token (default: $GATEWAY_ADMIN_TOKEN)",
)
Reason = typer.Option("", "--reason", "-r", help="why (kept in the audit log)")
Version = typer.Option(None, "--version", help="the config version your change is based on")


class AdminClient:
    def __init__(self, url: str, token: str, console: Console) -> None:
        self.url = url.rstrip("/")
        self.console = console
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=15)

    def call(self, method: str, path: str, body: Any = None, text: str | None = None) -> Any:
        try:
            response = self._http.request(
                method,
                path,
                json=body,
                content=text,
                headers={"content-type": "application/yaml"} if text is not None else None,
            )
        except httpx.HTTPError as exc:
            self.console.print(
                f"[bold red]Cannot reach the admin API at {self.url}[/] ({exc}): is the gateway "
                "running with --admin-port, and is --url (GATEWAY_ADMIN_URL) right?"
            )
            raise typer.Exit(2) from None
        if response.status_code >= 400:
            self._fail(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def _fail(self, response: httpx.Response) -> None:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"message": response.text[:500]}
        self.console.print(
            f"[bold red]{response.status_code}[/] {error.get('message')}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)

    def change(self, changes: list[dict[str, Any]], reason: str, version: str | None) -> Any:
        version = version or self.call("GET", "/admin/routes")["version"]
        body = {"version": version, "reason": reason, "changes": changes}
        result = self.call("POST", "/admin/changes", body)
        ops = ", ".join(" ".join(str(v) for v in c.values()) for c in changes)
        self.console.print(
            f"applied: {ops} (version {result['version']}, "
            f"overrides revision {result['revision']})",
            highlight=False,
        )
        return result


def _tiers(spec: str) -> list[str | list[str]]:
    tiers: list[str | list[str]] = []
    for part in spec.split(","):
        members = [m.strip() for m in part.split("+") if m.strip()]
        if members:
            tiers.append(members[0] if len(members) == 1 else members)
    if not tiers:
        raise typer.BadParameter("give at least one deployment, e.g. openai/gpt-4o,azure/gpt-4o")
    return tiers


def _weights(spec: str) -> dict[str, float]:
    weights = {}
    for part in spec.split(","):
        name, sep, value = part.rpartition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise typer.BadParameter(f"'{part}': write deployment=weight, e.g. openai/gpt-4o=3")
    return weights


def print_routes(data: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"Routes (version {data['version']}, overrides revision {data['revision']})"
    )
    for column in ("alias", "#", "deployment", "tier", "weight", "state", "in flight", "why"):
        table.add_column(column)
    for alias in data["aliases"]:
        name = alias["alias"] + (" *" if alias["overridden"] else "")
        for d in alias["deployments"]:
            color = "green" if d["state"] == "available" else "yellow"
            table.add_row(
                name,
                str(d["position"]),
                d["deployment"],
                str(d["tier"]),
                f"{d['weight']:g}",
                f"[{color}]{d['state']}[/]",
                str(d["in_flight"]),
                d["why"],
            )
            name = ""
    console.print(table)
    console.print("* order or weights set at run time (`gateway route reset ALIAS` undoes it)")


def _wait_drained(client: AdminClient, deployment: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        routes = client.call("GET", "/admin/routes")
        counts = [
            d["in_flight"]
            for alias in routes["aliases"]
            for d in alias["deployments"]
            if d["deployment"] == deployment
        ]
        left = max(counts, default=0)
        if left == 0:
            client.console.print(f"{deployment}: drained, nothing in flight")
            return
        if time.monotonic() >= deadline:
            client.console.print(f"[yellow]{deployment}: {left} request(s) still in flight[/]")
            raise typer.Exit(1)
        time.sleep(0.2)


def register(app: typer.Typer) -> None:
    route = typer.Typer(help="Change an alias's fallback order or weights at run time.")
    config = typer.Typer(help="The running config: diff, show, status.")
    app.add_typer(route, name="route")
    app.add_typer(config, name="config")
    _register_views(app, config)
    _register_route(route)
    _register_deployment(app)


def _client(url: str, token: str) -> AdminClient:
    return AdminClient(url, token, Console())


def _register_views(app: typer.Typer, config: typer.Typer) -> None:
    @app.command()
    def routes(url: str = Url, token: str = Token) -> None:
        """Aliases and their deployments, with live state."""
        client = _client(url, token)
        print_routes(client.call("GET", "/admin/routes"), client.console)

    @app.command()
    def audit(url: str = Url, token: str = Token, limit: int = typer.Option(50)) -> None:
        """The audit log: who changed what, when, why (oldest first)."""
        client = _client(url, token)
        for raw in client.call("GET", f"/admin/audit?limit={limit}")["entries"]:
            client.console.print(
                describe(AuditEntry.model_validate(raw)),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    @app.command()
    def reload(url: str = Url, token: str = Token) -> None:
        """Re-read providers.yaml now (as SIGHUP does)."""
        client = _client(url, token)
        result = client.call("POST", "/admin/reload")
        client.console.print(f"{result['outcome']}: version {result['version']}")
        for note in result["notes"]:
            client.console.print(f"  {note}", markup=False)

    @config.command("diff")
    def diff(
        file: typer.FileText = typer.Argument(..., help="providers.yaml to compare"),
        url: str = Url,
        token: str = Token,
    ) -> None:
        """What FILE would change against the running config (exit 0: nothing, 1: changes,
        2: FILE is invalid)."""
        client = _client(url, token)
        result = client.call("POST", "/admin/config/diff", text=file.read())
        if not result["valid"]:
            client.console.print(f"[bold red]{file.name} is invalid:[/]")
            for problem in result["problems"]:
                client.console.print(f"  - {problem}", markup=False)
            raise typer.Exit(2)
        for line in result["changes"] + result["notes"]:
            client.console.print(line, markup=False, highlight=False, soft_wrap=True)
        if not result["changes"]:
            client.console.print("no change against the running config")
            return
        typer.echo(result["diff"], nl=False)  # verbatim: no wrapping, no markup
        raise typer.Exit(1)

    @config.command("show")
    def show(url: str = Url, token: str = Token) -> None:
        """The effective config (file + runtime overrides) as YAML, secrets masked."""
        client = _client(url, token)
        typer.echo(client.call("GET", "/admin/config"), nl=False)  # verbatim, to paste back

    @config.command("status")
    def status(url: str = Url, token: str = Token) -> None:
        """Version, last reload and rejections, persistence health (JSON)."""
        client = _client(url, token)
        client.console.print_json(data=client.call("GET", "/admin/status"))


def _register_route(route: typer.Typer) -> None:
    @route.command("set")
    def set_order(
        alias: str,
        order: str,
        reason: str = Reason,
        version: str | None = Version,
        url: str = Url,
        token: str = Token,
    ) -> None:
        """Set ALIAS's fallbacks to ORDER: comma-separated, best first; a+b is one tier."""
        change = {"op": "set_order", "alias": alias, "order": _tiers(order)}
        _client(url, token).change([change], reason, version)

    @route.command("weights")
    def set_weights(
        alias: str,
        weights: str,
        reason: str = Reason,
        version: str | None = Version,
        url: str = Url,
        token: str = Token,
    ) -> None:
        """Set weights inside ALIAS's tiers: deployment=weight, comma-separated."""
        change = {"op": "set_weights", "alias": alias, "weights": _weights(weights)}
        _client(url, token).change([change], reason, version)

    @route.command("reset")
    def reset(
        alias: str,
        reason: str = Reason,
        version: str | None = Version,
        url: str = Url,
        token: str = Token,
    ) -> None:
        """Give ALIAS back to the file's order and weights."""
        _client(url, token).change([{"op": "reset_route", "alias": alias}], reason, version)


def _register_deployment(app: typer.Typer) -> None:
    @app.command()
    def drain(
        deployment: str,
        reason: str = Reason,
        version: str | None = Version,
        wait: float = typer.Option(0.0, help="seconds to wait for in-flight requests"),
        url: str = Url,
        token: str = Token,
    ) -> None:
        """No new requests to DEPLOYMENT (provider/model); in-flight ones finish."""
        client = _client(url, token)
        result = client.change([{"op": "drain", "deployment": deployment}], reason, version)
        client.console.print(f"in flight: {result['in_flight'].get(deployment, 0)}")
        if wait > 0:
            _wait_drained(client, deployment, wait)

    for op in ("enable", "disable"):
        _deployment_command(app, op)

    @app.command()
    def breaker(
        deployment: str,
        state: str = typer.Argument(..., help="open, closed or auto"),
        reason: str = Reason,
        version: str | None = Version,
        url: str = Url,
        token: str = Token,
    ) -> None:
        """Force DEPLOYMENT's breaker open or closed, or hand it back (auto)."""
        change = {"op": "force_breaker", "deployment": deployment, "state": state}
        _client(url, token).change([change], reason, version)

    for op, name in (("stop_vendor", "stop-vendor"), ("start_vendor", "start-vendor")):
        _vendor_command(app, op, name)


def _deployment_command(app: typer.Typer, op: str) -> None:
    def command(
        deployment: str,
        reason: str = Reason,
        version: str | None = Version,
        url: str = Url,
        token: str = Token,
    ) -> None:
        _client(url, token).change([{"op": op, "deployment": deployment}], reason, version)

    command.__doc__ = {
        "enable": "Undo drain and disable for DEPLOYMENT.",
        "disable": "Take DEPLOYMENT (provider/model) out of every alias until enabled.",
    }[op]
    app.command(op)(command)


def _vendor_command(app: typer.Typer, op: str, name: str) -> None:
    def command(
        provider: str,
        reason: str = Reason,
        version: str | None = Version,
        url: str = Url,
        token: str = Token,
    ) -> None:
        _client(url, token).change([{"op": op, "provider": provider}], reason, version)

    command.__doc__ = {
        "stop_vendor": "Emergency stop: no traffic to any deployment of PROVIDER.",
        "start_vendor": "Undo stop-vendor for PROVIDER.",
    }[op]
    app.command(name)(command)
