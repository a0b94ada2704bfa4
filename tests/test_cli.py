"""The `gateway` command as a user meets it: real processes, real ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = [sys.executable, "-m", "gateway"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run([*GATEWAY, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_prints_the_routing_table_and_disabled_providers() -> None:
    result = run("check", "providers.yaml")
    assert result.returncode == 0, result.stderr
    assert "openai/gpt-4o-mini" in result.stdout
    assert "OPENAI_API_KEY" in result.stdout  # names the variable to set
    assert "config is valid" in result.stdout


def test_check_names_the_key_path_of_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers:\n  x: {kind: openai, api_key: k}\nroutes:\n  chat:\n"
                   "    fallbacks: [x/a, x/b, nope/c]\n")  # fmt: skip
    result = run("check", str(bad))
    assert result.returncode == 2
    assert "routes.chat.fallbacks[2]: unknown provider 'nope'" in result.stdout


def test_check_reports_a_missing_file_with_the_fix(tmp_path: Path) -> None:
    result = run("check", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "file not found" in result.stdout


def test_serve_on_a_taken_port_names_the_cause_and_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        result = run("serve", "--config", "providers.yaml", "--port", port)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr


@pytest.fixture
def demo() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen([*GATEWAY, "demo", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("gateway demo did not become ready in 30 s")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_demo_serves_the_openai_sdk_with_no_keys(demo: int) -> None:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{demo}/v1", api_key="none", max_retries=0)
    reply = client.chat.completions.create(
        model="demo-chat", messages=[{"role": "user", "content": "hello"}]
    )
    assert reply.choices[0].message.content
    assert sorted(m.id for m in client.models.list().data) == ["demo-chat", "demo-embed"]
