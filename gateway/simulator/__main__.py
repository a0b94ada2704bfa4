"""`python -m gateway.simulator --name alpha --port 9001 [--name beta --port 9002 ...]`"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import orjson

from gateway.simulator.faults import FaultSpec
from gateway.simulator.fleet import loop_factory, serve_vendors
from gateway.simulator.vendor import VendorSpec


def parse_args(argv: Sequence[str] | None = None) -> list[VendorSpec]:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.simulator", description="Run simulated LLM vendors."
    )
    parser.add_argument("--name", action="append", required=True, help="vendor name (repeat)")
    parser.add_argument("--port", action="append", type=int, default=[], help="port per --name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=None, help="key every vendor requires")
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--fault", action="append", default=[], help="JSON fault spec, all vendors")
    args = parser.parse_args(argv)
    if args.port and len(args.port) != len(args.name):
        parser.error("give one --port per --name, or none for free ports")
    ports = args.port or [0] * len(args.name)
    faults = tuple(FaultSpec.model_validate(orjson.loads(text)) for text in args.fault)
    return [
        VendorSpec(
            name=name,
            port=port,
            host=args.host,
            api_key=args.api_key,
            chunks=args.chunks,
            chunk_delay_ms=args.chunk_delay_ms,
            faults=faults,
        )
        for name, port in zip(args.name, ports, strict=True)
    ]


async def run(specs: list[VendorSpec]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve_vendors(specs) as handles:
        for handle in handles.values():
            print(f"{handle.name}: {handle.base_url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    specs = parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(run(specs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
