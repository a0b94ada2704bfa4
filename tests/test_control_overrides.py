"""Pure control-plane logic, table-driven: operations on the overrides document, composing
it with the file (validated like a file), pruning after a file change, line numbers,
masking and diffs. No sockets."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from gateway.config import LoadedConfig, load_text
from gateway.control.compose import compose, digest
from gateway.control.lines import with_lines
from gateway.control.overrides import (
    ChangeRequest,
    Operation,
    Overrides,
    apply_changes,
    prune,
)
from gateway.control.render import MASK, changes, render_yaml
from gateway.errors import ConfigError
from gateway.routing import build_routes

FILE = """\
providers:
  a: {kind: openai_compatible, base_url: "http://127.0.0.1:1/v1", api_key: "sk-literal-secret-1"}
  b: {kind: openai_compatible, base_url: "http://127.0.0.1:2/v1", api_key: "${B_KEY}"}
  c:
    kind: openai_compatible
    base_url: "http://127.0.0.1:3/v1"
    headers: {Authorization: "Bearer abcdefghijklmnop", X-Team: "search"}
routes:
  chat:
    fallbacks:
      - a/m1
      - {provider: b, model: m2, weight: 2, context_window: 8000}
      - c/m3
  embed:
    fallbacks: [b/e1, a/e2]
state: {redis_url: "redis://user:hunter2secret@redis:6379/0"}
"""
ENV = {"B_KEY": "sk-from-env-123456"}
OPS: TypeAdapter[Operation] = TypeAdapter(Operation)


def loaded(text: str = FILE) -> LoadedConfig:
    return load_text(text, "providers.yaml", env=ENV)


def apply(*ops: dict[str, Any], current: Overrides | None = None) -> Overrides:
    return apply_changes(
        current or Overrides(), [OPS.validate_python(o) for o in ops], loaded().config
    )


def effective(doc: Overrides) -> LoadedConfig:
    return compose(loaded(), doc, ENV)


def order(doc: Overrides, alias: str = "chat") -> list[tuple[str, int, float]]:
    route = build_routes(effective(doc).config)[alias]
    return [(d.id, d.priority, d.weight) for d in route.deployments]


# --------------------------------------------------------------------------- operations

VALID = [
    (
        "reorder",
        [{"op": "set_order", "alias": "chat", "order": ["c/m3", "a/m1", "b/m2"]}],
        [("c/m3", 0, 1.0), ("a/m1", 1, 1.0), ("b/m2", 2, 2.0)],
    ),
    (
        "subset keeps attributes",
        [{"op": "set_order", "alias": "chat", "order": ["b/m2"]}],
        [("b/m2", 0, 2.0)],
    ),
    (
        "a tier",
        [{"op": "set_order", "alias": "chat", "order": [["a/m1", "b/m2"], "c/m3"]}],
        [("a/m1", 0, 1.0), ("b/m2", 0, 2.0), ("c/m3", 1, 1.0)],
    ),
    (
        "borrowed from another alias",
        [{"op": "set_order", "alias": "chat", "order": ["a/e2"]}],
        [("a/e2", 0, 1.0)],
    ),
    (
        "weights",
        [{"op": "set_weights", "alias": "chat", "weights": {"a/m1": 5}}],
        [("a/m1", 0, 5.0), ("b/m2", 1, 2.0), ("c/m3", 2, 1.0)],
    ),
    (
        "weights then order keeps weight",
        [
            {"op": "set_weights", "alias": "chat", "weights": {"c/m3": 7}},
            {"op": "set_order", "alias": "chat", "order": ["c/m3", "a/m1"]},
        ],
        [("c/m3", 0, 7.0), ("a/m1", 1, 1.0)],
    ),
    (
        "reset",
        [
            {"op": "set_order", "alias": "chat", "order": ["c/m3"]},
            {"op": "reset_route", "alias": "chat"},
        ],
        [("a/m1", 0, 1.0), ("b/m2", 1, 2.0), ("c/m3", 2, 1.0)],
    ),
]


@pytest.mark.parametrize(("ops", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_route_operations(ops: list[dict[str, Any]], expected: list[Any]) -> None:
    doc = apply(*ops)
    assert doc.revision == 1
    assert order(doc) == expected


def test_deployment_and_vendor_flags() -> None:
    doc = apply(
        {"op": "drain", "deployment": "a/m1"},
        {"op": "disable", "deployment": "b/e1"},
        {"op": "force_breaker", "deployment": "c/m3", "state": "open"},
        {"op": "stop_vendor", "provider": "b"},
    )
    assert doc.flags("a/m1").drained and not doc.flags("a/m1").disabled
    assert doc.flags("b/e1").disabled
    assert doc.flags("c/m3").breaker == "open"
    assert doc.stopped_providers == ("b",)
    undone = apply(
        {"op": "enable", "deployment": "a/m1"},
        {"op": "enable", "deployment": "b/e1"},
        {"op": "force_breaker", "deployment": "c/m3", "state": "auto"},
        {"op": "start_vendor", "provider": "b"},
        current=doc,
    )
    assert undone.empty and undone.revision == 2  # flags left at defaults are dropped
    assert apply({"op": "reset_all"}, current=doc).empty


INVALID = [
    (
        {"op": "set_order", "alias": "nope", "order": ["a/m1"]},
        "changes[0].alias: unknown alias 'nope' (aliases: chat, embed)",
    ),
    ({"op": "drain", "deployment": "a/zzz"}, "changes[0].deployment: unknown deployment 'a/zzz'"),
    (
        {"op": "stop_vendor", "provider": "x"},
        "changes[0].provider: unknown provider 'x' (providers: a, b, c)",
    ),
    (
        {"op": "set_weights", "alias": "embed", "weights": {"c/m3": 2}},
        "changes[0].weights['c/m3']: not a deployment of alias 'embed'",
    ),
    ({"op": "set_order", "alias": "chat", "order": [[]]}, "changes[0].order[0]: an empty tier"),
]


@pytest.mark.parametrize(("op", "problem"), INVALID, ids=[i[1][:30] for i in INVALID])
def test_invalid_operations_name_the_operation(op: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        apply(op)
    assert caught.value.problems[0].startswith(problem)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"op": "set_order", "alias": "chat", "order": ["a/m1", "x/m9"]},
            "routes.chat.fallbacks[1]: unknown provider 'x' (known: a, b, c)",
        ),
        (
            {"op": "set_order", "alias": "chat", "order": ["a/m1", "a/m1"]},
            "routes.chat.fallbacks[1]: 'a/m1' listed twice",
        ),
        (
            {"op": "set_order", "alias": "chat", "order": ["a/"]},
            "routes.chat.fallbacks[0]: model is empty",
        ),
    ],
)
def test_the_composed_config_is_validated_like_a_file(change: dict[str, Any], problem: str) -> None:
    doc = apply(change)
    with pytest.raises(ConfigError) as caught:
        effective(doc)
    assert problem in caught.value.problems


def test_request_shape_is_checked_by_pydantic() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        ChangeRequest.model_validate(
            {"changes": [{"op": "set_weights", "alias": "chat", "weights": {"a/m1": -1}}]}
        )
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        ChangeRequest.model_validate({"changes": [{"op": "explode"}]})


def test_digest_is_the_files_until_a_change_and_then_moves_with_every_change() -> None:
    file = loaded()
    assert digest(file, Overrides()) == file.digest
    once = apply({"op": "drain", "deployment": "a/m1"})
    twice = apply({"op": "enable", "deployment": "a/m1"}, current=once)
    digests = {file.digest, digest(file, once), digest(file, twice)}
    assert len(digests) == 3  # same content as the start, yet a new revision: no ABA
    assert digest(loaded(), once) == digest(file, once)  # stable across replicas


def test_prune_drops_what_the_new_file_lacks() -> None:
    doc = apply(
        {"op": "set_order", "alias": "chat", "order": ["c/m3", "a/m1"]},
        {"op": "set_weights", "alias": "chat", "weights": {"a/m1": 3}},
        {"op": "set_order", "alias": "embed", "order": ["a/e2"]},
        {"op": "stop_vendor", "provider": "c"},
    )
    smaller = loaded(
        FILE.replace("  embed:\n    fallbacks: [b/e1, a/e2]\n", "")
        .replace("      - c/m3\n", "")
        .replace(
            '  c:\n    kind: openai_compatible\n    base_url: "http://127.0.0.1:3/v1"\n'
            '    headers: {Authorization: "Bearer abcdefghijklmnop", X-Team: "search"}\n',
            "",
        )
    )
    pruned, notes = prune(doc, smaller.config)
    assert pruned.routes["chat"].order == (("a/m1",),)
    assert "embed" not in pruned.routes and pruned.stopped_providers == ()
    assert notes == [
        "routes.chat: 'c/m3' dropped from the runtime order: no provider",
        "routes.embed: runtime override dropped: the alias is not in the file",
        "providers.c: emergency stop dropped: not in the file any more",
    ]
    assert [t.model for t in compose(smaller, pruned, ENV).config.routes["chat"].fallbacks] == [
        "m1"
    ]


# --------------------------------------------------------------------------- lines


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (
            "routes.chat.fallbacks[2]: unknown provider 'x'",
            "line 13: routes.chat.fallbacks[2]: unknown provider 'x'",
        ),
        ("providers.c.headers.X-Team: bad", "line 7: providers.c.headers.X-Team: bad"),
        ("routes.chat.timeout: missing here", "line 9: routes.chat.timeout: missing here"),
        ("line 3, column 1: YAML syntax error: x", "line 3, column 1: YAML syntax error: x"),
        ("(top level): expected a mapping", "(top level): expected a mapping"),
        ("nothing.like.this: x", "nothing.like.this: x"),
    ],
)
def test_problems_get_the_line_of_their_key_path(problem: str, expected: str) -> None:
    assert with_lines([problem], FILE) == [expected]


# --------------------------------------------------------------------------- render


def test_effective_yaml_masks_secrets_and_pastes_back() -> None:
    doc = apply(
        {"op": "set_order", "alias": "chat", "order": [["c/m3", "a/m1"], "b/m2"]},
        {"op": "drain", "deployment": "b/m2"},
        {"op": "stop_vendor", "provider": "c"},
    )
    text = render_yaml(loaded(), doc, "7-abc")
    for secret in ("sk-literal-secret-1", "abcdefghijklmnop", "hunter2secret", "sk-from-env"):
        assert secret not in text
    data = yaml.safe_load(text)
    assert data["providers"]["a"]["api_key"] == MASK
    assert data["providers"]["b"]["api_key"] == "${B_KEY}"  # a reference is kept as written
    assert data["providers"]["c"]["headers"] == {"Authorization": MASK, "X-Team": "search"}
    assert data["state"]["redis_url"] == f"redis://{MASK}@redis:6379/0"
    assert "#   b/m2: drained" in text and "#   provider c: emergency stop" in text
    pasted = load_text(text.replace(MASK, "sk-new-key-value"), "pasted", env=ENV)
    assert [(t.provider, t.model, t.priority) for t in pasted.config.routes["chat"].fallbacks] == [
        ("c", "m3", 0),
        ("a", "m1", 0),
        ("b", "m2", 1),
    ]


def test_changes_never_show_a_secret() -> None:
    old = loaded()
    new = loaded(
        FILE.replace("Bearer abcdefghijklmnop", "Bearer qrstuvwxyz012345")
        .replace("sk-literal-secret-1", "sk-literal-secret-2")
        .replace("http://127.0.0.1:2/v1", "https://bob:pa55word@example.com/v1")
    )
    listed = "\n".join(changes(old, new))
    for secret in ("abcdefghijklmnop", "qrstuvwxyz012345", "secret-1", "secret-2", "pa55word"):
        assert secret not in listed
    assert f"providers.b.base_url: 'http://127.0.0.1:2/v1' -> 'https://{MASK}@example.com/v1'" in (
        listed
    )
    assert "providers.a.api_key: changed (values not shown)" in listed
    assert "providers.c.headers.Authorization: changed (values not shown)" in listed


def test_changes_lists_each_setting_that_differs() -> None:
    old = loaded()
    new = loaded(
        FILE.replace("      - c/m3\n", "").replace("weight: 2", "weight: 4")
        + "timeouts: {connect: 1.5}\n"
    )
    assert changes(old, new) == [
        "routes.chat.deployments.b/m2.weight: 2.0 -> 4.0",
        "routes.chat.deployments.c/m3.context_window: removed (was None)",
        "routes.chat.deployments.c/m3.cost: removed (was None)",
        "routes.chat.deployments.c/m3.weight: removed (was 1.0)",
        "routes.chat.order: 'a/m1, b/m2, c/m3' -> 'a/m1, b/m2'",
        "timeouts.connect: 2.0 -> 1.5",
    ]
    assert changes(old, loaded()) == []
