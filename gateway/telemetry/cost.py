"""Prices per deployment: config overrides first, then litellm's model price map.

The map is read from the JSON file litellm ships (the one it loads itself with
`LITELLM_LOCAL_MODEL_COST_MAP=True`) without importing litellm, once per table, and only
when some deployment has no price in the config. A request's cost is then one dict
lookup and two multiplications.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gateway.config import GatewayConfig

PRICE_FILE = "model_prices_and_context_window_backup.json"
Price = tuple[float, float]  # USD per input token, per output token
PriceMap = dict[str, Any]


def load_litellm_prices() -> PriceMap:
    """litellm's bundled price map, or an empty map when litellm is not installed."""
    spec = importlib.util.find_spec("litellm")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / PRICE_FILE
        if path.is_file():
            data = orjson.loads(path.read_bytes())
            return data if isinstance(data, dict) else {}
    if spec is None:
        return {}
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return dict(litellm.model_cost)


def _lookup(prices: PriceMap, kind: str, model: str) -> Price | None:
    for key in (f"{kind}/{model}", model, model.rsplit("/", 1)[-1]):
        entry = prices.get(key)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            return (
                float(entry.get("input_cost_per_token") or 0.0),
                float(entry.get("output_cost_per_token") or 0.0),
            )
    return None


def price_table(
    config: GatewayConfig, load: Callable[[], PriceMap] = load_litellm_prices
) -> dict[str, Price]:
    """deployment id -> price; deployments with no known price are left out (cost 0)."""
    table: dict[str, Price] = {}
    unpriced: list[tuple[str, str, str]] = []
    for route in config.routes.values():
        for t in route.fallbacks:
            deployment = f"{t.provider}/{t.model}"
            if t.cost is not None:
                table[deployment] = (t.cost.input_per_mtok / 1e6, t.cost.output_per_mtok / 1e6)
            else:
                unpriced.append((deployment, config.providers[t.provider].kind, t.model))
    if unpriced:
        prices = load()
        for deployment, kind, model in unpriced:
            price = _lookup(prices, kind, model)
            if price is not None and deployment not in table:
                table[deployment] = price
    return table


def cost_of(price: Price | None, input_tokens: int, output_tokens: int) -> float:
    if price is None:
        return 0.0
    return input_tokens * price[0] + output_tokens * price[1]


class Pricing:
    """The price table of the live config version, rebuilt when the version changes."""

    def __init__(self, load: Callable[[], PriceMap] = load_litellm_prices) -> None:
        self._load = load
        self._loaded: PriceMap | None = None
        self._version = -1
        self._table: dict[str, Price] = {}
        self._last: tuple[Any, str, tuple[int, int, float]] | None = None

    def _prices(self) -> PriceMap:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def table(self, config: GatewayConfig, version: int) -> dict[str, Price]:
        if version != self._version:
            self._table = price_table(config, self._prices)
            self._version = version
        return self._table

    def cost(
        self, config: GatewayConfig, version: int, deployment: str, usage: Any
    ) -> tuple[int, int, float]:
        """(input tokens, output tokens, USD) of one answer's `usage` object."""
        last = self._last
        if last is not None and last[0] is usage and last[1] == deployment and usage is not None:
            return last[2]  # metrics, spans and the log ask about the same answer in turn
        tokens_in, tokens_out = usage_tokens(usage)
        price = self.table(config, version).get(deployment)
        result = (tokens_in, tokens_out, cost_of(price, tokens_in, tokens_out))
        self._last = (usage, deployment, result)
        return result


def usage_tokens(usage: Any) -> tuple[int, int]:
    """Input and output tokens from an OpenAI `usage` object (chat or embeddings)."""
    if not isinstance(usage, dict):
        return 0, 0
    tokens_in = usage.get("prompt_tokens") or usage.get("input_tokens") or 0
    tokens_out = usage.get("completion_tokens") or usage.get("output_tokens") or 0
    return (
        tokens_in if isinstance(tokens_in, int) else 0,
        tokens_out if isinstance(tokens_out, int) else 0,
    )
