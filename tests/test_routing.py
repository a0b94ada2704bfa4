"""Pure routing: priority tiers, weighted order, health filtering, larger-context fallback."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

import pytest

from gateway.config import load_text
from gateway.routing import (
    Availability,
    Deployment,
    Plan,
    Route,
    Skipped,
    Status,
    build_routes,
    describe,
    larger_context,
    order,
    plan,
)

PROVIDERS = """
providers:
  a: {kind: openai, api_key: k}
  b: {kind: openai, api_key: k}
  c: {kind: openai, api_key: k}
"""


def dep(name: str, priority: int = 0, weight: float = 1.0, window: int | None = None) -> Deployment:
    return Deployment(f"{name}/m", name, "m", priority, weight, window)


def route_of(*deployments: Deployment) -> Route:
    routes = build_routes(load_text(PROVIDERS + "routes:\n  r: {fallbacks: [a/m]}\n").config)
    return Route("r", routes["r"].config, deployments)


class View:
    """A health view from a table: deployment name -> status (default available)."""

    def __init__(self, statuses: Mapping[str, Status] | None = None) -> None:
        self.statuses = dict(statuses or {})
        self.asked: list[tuple[str, float]] = []

    def status(self, deployment: Deployment, now: float) -> Status:
        self.asked.append((deployment.provider, now))
        return self.statuses.get(deployment.provider, Status(Availability.AVAILABLE))


BUILD_CASES = [
    ("list order is the priority",
     "[a/m1, b/m2, c/m3]",
     [("a/m1", 0, 1.0, None), ("b/m2", 1, 1.0, None), ("c/m3", 2, 1.0, None)]),
    ("explicit priorities and weights kept",
     "[{provider: a, model: m, priority: 0, weight: 3}, {provider: b, model: m, priority: 0}]",
     [("a/m", 0, 3.0, None), ("b/m", 0, 1.0, None)]),
    ("context window carried",
     "[{provider: a, model: m, context_window: 8000}, b/big]",
     [("a/m", 0, 1.0, 8000), ("b/big", 1, 1.0, None)]),
    ("model names may contain slashes",
     "[a/meta-llama/Llama-3-8b]",
     [("a/meta-llama/Llama-3-8b", 0, 1.0, None)]),
]  # fmt: skip


@pytest.mark.parametrize(("fallbacks", "expected"), [c[1:] for c in BUILD_CASES],
                         ids=[c[0] for c in BUILD_CASES])  # fmt: skip
def test_build_routes(fallbacks: str, expected: list[tuple[str, int, float, int | None]]) -> None:
    config = load_text(PROVIDERS + f"routes:\n  chat: {{fallbacks: {fallbacks}}}\n").config
    route = build_routes(config)["chat"]
    assert route.alias == "chat"
    got = [(d.id, d.priority, d.weight, d.context_window) for d in route.deployments]
    assert got == expected
    assert all(d.id == f"{d.provider}/{d.model}" for d in route.deployments)


def test_describe_lists_every_deployment_in_config_order() -> None:
    config = load_text(PROVIDERS + "routes:\n  chat: {fallbacks: [a/m, "
                       "{provider: b, model: n, context_window: 100}]}\n").config  # fmt: skip
    assert describe(build_routes(config)) == [
        ("chat", 1, "a/m", "0", 1.0, "-"),
        ("chat", 2, "b/n", "1", 1.0, "100"),
    ]


ORDER_CASES = [
    ("tiers ascending", [dep("c", 2), dep("a", 0), dep("b", 1)], ["a", "b", "c"]),
    ("single deployment", [dep("a", 5)], ["a"]),
    ("tier gaps are fine", [dep("b", 10), dep("a", 3)], ["a", "b"]),
    ("lower tier first regardless of weight", [dep("a", 1, 100.0), dep("b", 0, 0.01)], ["b", "a"]),
]


@pytest.mark.parametrize(("deployments", "expected"), [c[1:] for c in ORDER_CASES],
                         ids=[c[0] for c in ORDER_CASES])  # fmt: skip
@pytest.mark.parametrize("seed", range(5))
def test_order_by_tier(deployments: list[Deployment], expected: list[str], seed: int) -> None:
    got = [d.provider for d in order(deployments, random.Random(seed))]
    assert got == expected


WEIGHT_CASES = [
    ("equal", {"a": 1.0, "b": 1.0}),
    ("three to one", {"a": 3.0, "b": 1.0}),
    ("fractional weights", {"a": 0.2, "b": 0.3, "c": 0.5}),
    ("heavily skewed", {"a": 9.0, "b": 1.0}),
]


@pytest.mark.parametrize("weights", [c[1] for c in WEIGHT_CASES], ids=[c[0] for c in WEIGHT_CASES])
def test_weighted_split_follows_weights(weights: dict[str, float]) -> None:
    rng = random.Random(1234)
    tier = [dep(name, 0, w) for name, w in weights.items()]
    draws = 20_000
    first = Counter(order(tier, rng)[0].provider for _ in range(draws))
    total = sum(weights.values())
    for name, w in weights.items():
        assert first[name] / draws == pytest.approx(w / total, abs=0.015), name


def test_weighted_order_is_a_permutation_of_the_tier() -> None:
    rng = random.Random(7)
    tier = [dep("a", 0, 5.0), dep("b", 0, 1.0), dep("c", 0, 0.5)]
    for _ in range(200):
        got = order(tier, rng)
        assert sorted(d.provider for d in got) == ["a", "b", "c"]


def test_second_place_follows_weights_among_the_rest() -> None:
    # Without replacement: when "a" (weight 2) is drawn first, "b" and "c" split 3:1.
    rng = random.Random(99)
    tier = [dep("a", 0, 2.0), dep("b", 0, 3.0), dep("c", 0, 1.0)]
    seconds = Counter(o[1].provider for o in (order(tier, rng) for _ in range(30_000))
                      if o[0].provider == "a")  # fmt: skip
    n = sum(seconds.values())
    assert seconds["b"] / n == pytest.approx(0.75, abs=0.02)


def test_weighted_tier_inside_priorities() -> None:
    rng = random.Random(5)
    deployments = [dep("x", 1), dep("a", 0, 1.0), dep("b", 0, 1.0)]
    seen_first = set()
    for _ in range(200):
        got = [d.provider for d in order(deployments, rng)]
        assert got[2] == "x"
        seen_first.add(got[0])
    assert seen_first == {"a", "b"}


def test_order_is_reproducible_for_a_seed() -> None:
    tier = [dep(n, 0, w) for n, w in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0))]
    runs = [[d.provider for d in order(tier, random.Random(42))] for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]


OPEN = Status(Availability.BREAKER_OPEN, 130.0, "breaker open")
COOL = Status(Availability.COOLING_DOWN, 105.0, "rate_limited")
BUSY = Status(Availability.TRIAL_BUSY, None, "half-open trial in flight")
TRIAL = Status(Availability.TRIAL)
DISABLED = Status(Availability.DISABLED, None, "environment variable K is not set")

PLAN_CASES = [
    ("all available", {}, ["a", "b", "c"], []),
    ("open breaker skipped", {"a": OPEN}, ["b", "c"], ["a"]),
    ("half-open with a free trial slot is routable", {"b": TRIAL}, ["a", "b", "c"], []),
    ("half-open with its trial taken is skipped", {"b": BUSY}, ["a", "c"], ["b"]),
    ("cooling down skipped", {"c": COOL}, ["a", "b"], ["c"]),
    ("drained, disabled skipped; ejected tried when nothing else is left",
     {"a": Status(Availability.DRAINED), "b": DISABLED, "c": Status(Availability.EJECTED)},
     ["c"], ["a", "b"]),
    ("ejected skipped while another is available",
     {"a": Status(Availability.DRAINED), "c": Status(Availability.EJECTED)}, ["b"], ["a", "c"]),
]  # fmt: skip


@pytest.mark.parametrize(("statuses", "candidates", "skipped"), [c[1:] for c in PLAN_CASES],
                         ids=[c[0] for c in PLAN_CASES])  # fmt: skip
def test_plan_filters_by_health(
    statuses: dict[str, Status], candidates: list[str], skipped: list[str]
) -> None:
    view = View(statuses)
    p = plan(route_of(dep("a", 0), dep("b", 1), dep("c", 2)), view, random.Random(0), 100.0)
    assert [d.provider for d in p.candidates] == candidates
    assert [s.deployment.provider for s in p.skipped] == skipped
    assert all(s.status == statuses[s.deployment.provider] for s in p.skipped)
    assert view.asked == [("a", 100.0), ("b", 100.0), ("c", 100.0)]


RETRY_AFTER_CASES = [
    ("nothing skipped: default", [], 1.0),
    ("earliest until wins", [OPEN, COOL], 5.0),
    ("unknown untils ignored", [BUSY, OPEN], 30.0),
    ("only unknown untils: default", [BUSY, DISABLED], 1.0),
    ("past untils clamp to zero", [Status(Availability.COOLING_DOWN, 90.0)], 0.0),
]


@pytest.mark.parametrize(("statuses", "expected"), [c[1:] for c in RETRY_AFTER_CASES],
                         ids=[c[0] for c in RETRY_AFTER_CASES])  # fmt: skip
def test_plan_retry_after(statuses: list[Status], expected: float) -> None:
    p = Plan((), tuple(Skipped(dep(f"d{i}"), s) for i, s in enumerate(statuses)))
    assert p.retry_after(100.0) == pytest.approx(expected)


def test_retry_after_default_is_configurable() -> None:
    assert Plan((), ()).retry_after(0.0, default=7.5) == 7.5


LARGER_CASES = [
    ("only larger windows", 8000,
     [("a", 4000), ("b", 8000), ("c", 16000), ("d", 32000)], ["c", "d"]),
    ("unknown windows never qualify", 8000, [("a", None), ("b", 16000)], ["b"]),
    ("failed one without a window: any known window", None, [("a", None), ("b", 100)], ["b"]),
    ("none larger", 32000, [("a", 8000), ("b", 32000)], []),
    ("keeps the given order", 1, [("c", 30), ("a", 10), ("b", 20)], ["c", "a", "b"]),
]  # fmt: skip


@pytest.mark.parametrize(("failed_window", "candidates", "expected"),
                         [c[1:] for c in LARGER_CASES],
                         ids=[c[0] for c in LARGER_CASES])  # fmt: skip
def test_larger_context(
    failed_window: int | None, candidates: list[tuple[str, int | None]], expected: list[str]
) -> None:
    pool = [dep(name, window=window) for name, window in candidates]
    got = larger_context(pool, dep("failed", window=failed_window))
    assert [d.provider for d in got] == expected
