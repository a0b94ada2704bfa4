"""The `gateway` command."""

from __future__ import annotations

import os

import typer

from gateway.commands import chaos, core, demo, ops, sre


def build() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, add_completion=False,
                      help="Multi-vendor failover inference gateway.")  # fmt: skip
    for module in (core, demo, chaos, ops, sre):
        module.register(app)
    return app


def main() -> None:
    # litellm must not fetch its price map from the internet at import time.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    build()()
