"""Active probes: what to probe (pure), and one probe's outcome (I/O).

A `models` probe is one `GET` of the vendor's model list per provider; its result counts
for every deployment of that provider, and it bills nothing. A `completion` probe asks
each deployment for one token through its adapter (billed, so only when configured).
Probe errors are redacted with the provider's key before anyone sees them. A 429 counts as
alive: rate limiting is not an outage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp

from gateway.config import GatewayConfig, ProviderConfig
from gateway.errors import UpstreamError, redact
from gateway.health.config import ProbeConfig, ProbeKind
from gateway.providers.base import Adapter, UpstreamRequest
from gateway.providers.openai_compat import provider_secrets, vendor_error

ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
PROBE_PROMPT = "ping"
# A vendor that answers 429 is up: the request path's cool-down handles the limit, and an
# ejection would keep traffic away for healthy_threshold probes after the limit lifts.
RATE_LIMITED = 429


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    key: str  # "models:<provider>" or "completion:<deployment>"
    provider: str
    kind: ProbeKind
    model: str  # the vendor model a completion probe asks ("" for models)
    deployments: tuple[str, ...]  # whose health the result feeds
    config: ProbeConfig


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    error: str = ""
    duration_ms: float = 0.0


def probe_targets(config: GatewayConfig, disabled: Mapping[str, str]) -> dict[str, ProbeTarget]:
    """Every probe the config asks for, by key; disabled providers are not probed."""
    by_provider: dict[str, list[tuple[str, str]]] = {}
    for route in config.routes.values():
        for t in route.fallbacks:
            pair = (f"{t.provider}/{t.model}", t.model)
            if t.provider not in disabled and pair not in by_provider.get(t.provider, []):
                by_provider.setdefault(t.provider, []).append(pair)
    targets: dict[str, ProbeTarget] = {}
    for name, deployments in by_provider.items():
        provider = config.providers[name]
        probe = config.health.probe.merged(provider.probe)
        kind = probe.kind_for(provider.kind)
        if kind == "models":
            ids = tuple(d for d, _ in deployments)
            targets[f"models:{name}"] = ProbeTarget(f"models:{name}", name, kind, "", ids, probe)
        elif kind == "completion":
            for d, model in deployments:
                key = f"completion:{d}"
                targets[key] = ProbeTarget(key, name, kind, model, (d,), probe)
    return targets


def models_request(provider: ProviderConfig) -> tuple[str, dict[str, str]]:
    """URL and headers of the vendor's model list (no body, no tokens billed)."""
    key = provider.api_key.get_secret_value() if provider.api_key else ""
    headers: dict[str, str] = {}
    if provider.kind == "anthropic":
        base = (provider.base_url or ANTHROPIC_URL).rstrip("/")
        url = base + "/v1/models"
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if key:
            headers["x-api-key"] = key
    elif provider.kind == "azure":
        url = f"{(provider.resolved_base_url or '').rstrip('/')}/openai/models"
        if provider.api_version:
            url += f"?api-version={quote(provider.api_version, safe='')}"
        if key:
            headers["api-key"] = key
    else:
        url = (provider.resolved_base_url or "").rstrip("/") + "/models"
        if key:
            headers["Authorization"] = f"Bearer {key}"
    headers.update(provider.headers)
    return url, headers


async def probe_models(
    session: aiohttp.ClientSession, provider: ProviderConfig, seconds: float
) -> ProbeResult:
    url, headers = models_request(provider)
    secrets = provider_secrets(provider)
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                body = await response.read()
                status = response.status
    except TimeoutError:
        return ProbeResult(False, f"no answer within {seconds:g}s", _ms(started))
    except (aiohttp.ClientError, OSError) as exc:
        detail = redact(str(exc), secrets) or "connection failed"
        return ProbeResult(False, f"{type(exc).__name__}: {detail}", _ms(started))
    if 200 <= status < 300 or status == RATE_LIMITED:
        return ProbeResult(True, "", _ms(started))
    message, _ = vendor_error(body)
    text = redact(message or "", secrets)[:200]
    return ProbeResult(False, f"HTTP {status}" + (f": {text}" if text else ""), _ms(started))


async def probe_completion(adapter: Adapter, model: str, seconds: float) -> ProbeResult:
    request = UpstreamRequest(
        body={
            "model": model,
            "messages": [{"role": "user", "content": PROBE_PROMPT}],
            "max_tokens": 1,
        },
        endpoint="chat",
        connect_timeout=seconds,
        first_token_timeout=seconds,
        idle_timeout=seconds,
    )
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            await adapter.complete(request)
    except TimeoutError:
        return ProbeResult(False, f"no answer within {seconds:g}s", _ms(started))
    except UpstreamError as error:  # adapters redact their messages
        if error.status == RATE_LIMITED:
            return ProbeResult(True, "", _ms(started))
        return ProbeResult(False, error.message[:300], _ms(started))
    return ProbeResult(True, "", _ms(started))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
