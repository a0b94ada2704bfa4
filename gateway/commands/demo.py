"""`gateway demo`: simulated vendors on loopback and the gateway in front of them.

No keys, no internet, no Redis: everything runs in this process.
"""

from __future__ import annotations

import typer
from rich.console import Console

from gateway.config import LoadedConfig, load_text

DEMO_VENDORS = ("alpha", "beta", "gamma")


def demo_config(alpha: str, beta: str, gamma: str, port: int) -> str:
    """The demo's providers.yaml: two OpenAI-compatible vendors and one Anthropic one."""
    return f"""
server: {{host: 127.0.0.1, port: {port}}}
timeouts: {{connect: 1.0, first_token: 5.0, idle: 5.0}}
breaker: {{consecutive_failures: 3, open_seconds: 5, max_open_seconds: 60}}
providers:
  alpha: {{kind: openai_compatible, base_url: "{alpha}/v1", capabilities: {{prefill: true}}}}
  beta: {{kind: openai_compatible, base_url: "{beta}/v1"}}
  gamma: {{kind: anthropic, base_url: "{gamma}", api_key: "demo-key"}}
routes:
  demo-chat:
    timeout: 30
    fallbacks: [alpha/sim-gpt, beta/sim-gpt, gamma/sim-claude]
  demo-embed:
    fallbacks: [alpha/sim-embed, beta/sim-embed]
"""


def instructions(gateway_url: str, vendors: dict[str, str]) -> str:
    alpha = vendors["alpha"]
    return f"""
[bold green]failover-gateway demo[/] — gateway on {gateway_url}/v1
Simulated vendors: {", ".join(f"{n} {u}" for n, u in vendors.items())}

[bold]Ask it something (curl):[/]
  curl -s {gateway_url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{"model": "demo-chat", "messages": [{{"role": "user", "content": "hello"}}]}}' -i

[bold]Or with the openai SDK:[/]
  from openai import OpenAI
  client = OpenAI(base_url="{gateway_url}/v1", api_key="none")
  reply = client.chat.completions.create(
      model="demo-chat", messages=[{{"role": "user", "content": "hello"}}])
  print(reply.choices[0].message.content)

[bold]Break a vendor and watch traffic move[/]
(the x-gateway-provider and x-gateway-route response headers show who served and why):
  curl -s -X POST {alpha}/_sim/faults -H 'content-type: application/json' \\
    -d '{{"kind": "status", "status": 503}}'
  curl -s -X PUT {alpha}/_sim/faults -H 'content-type: application/json' \\
    -d '[{{"kind": "cut", "after_chunks": 4}}]'     # then stream with "stream": true
  curl -s -X DELETE {alpha}/_sim/faults      # heal it
  curl -s {alpha}/_sim/stats                 # what the vendor saw

Ctrl-C stops everything.
"""


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        port: int = typer.Option(8080, help="gateway port"),
        log_level: str = typer.Option("warning", help="uvicorn log level"),
    ) -> None:
        """Run simulated vendors and the gateway in front of them (no keys needed)."""
        from gateway.server import PortUnavailable, bind, build_server
        from gateway.simulator import VendorFleet, VendorSpec

        console = Console()
        try:
            sock = bind("127.0.0.1", port)
        except PortUnavailable as exc:
            console.print(f"[bold red]Cannot start the demo:[/] {exc}")
            raise typer.Exit(2) from None
        specs = [
            VendorSpec(name=name, models=("sim-gpt", "sim-claude", "sim-embed"))
            for name in DEMO_VENDORS
        ]
        with VendorFleet.start(specs) as fleet:
            urls = {name: fleet[name].base_url for name in DEMO_VENDORS}
            loaded: LoadedConfig = load_text(
                demo_config(urls["alpha"], urls["beta"], urls["gamma"], port), "demo"
            )
            console.print(
                instructions(f"http://127.0.0.1:{port}", urls), highlight=False, soft_wrap=True
            )
            build_server(loaded, log_level).run(sockets=[sock])
