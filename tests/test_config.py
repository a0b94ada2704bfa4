"""providers.yaml loading and validation: every problem names its key path (or YAML line)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import LoadedConfig, load_file, load_text
from gateway.errors import ConfigError

PROVIDERS = """
providers:
  openai: {kind: openai, api_key: sk-test}
  groq: {kind: groq, api_key: gk-test}
"""


def load(text: str, env: dict[str, str] | None = None) -> LoadedConfig:
    return load_text(text, "providers.yaml", env={} if env is None else env)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, env)
    assert caught.value.source == "providers.yaml"
    assert str(caught.value).startswith("providers.yaml: ")
    return caught.value.problems


def test_a_full_config_loads_with_defaults() -> None:
    loaded = load(PROVIDERS + "routes:\n  chat: {fallbacks: [openai/gpt-4o, groq/llama-3]}\n")
    config = loaded.config
    assert loaded.disabled == {}
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert (config.timeouts.connect, config.timeouts.first_token, config.timeouts.idle) == (
        2.0, 20.0, 15.0)  # fmt: skip
    assert config.retry.max_attempts == 4
    assert config.breaker.consecutive_failures == 5
    route = config.routes["chat"]
    assert [(t.provider, t.model) for t in route.fallbacks] == [
        ("openai", "gpt-4o"), ("groq", "llama-3")]  # fmt: skip
    assert (route.timeout, route.stream_rescue, route.content_policy) == (60.0, True, "return")
    key = config.providers["openai"].api_key
    assert key is not None and key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(config)


def test_the_shipped_example_validates() -> None:
    text = (Path(__file__).parent.parent / "providers.yaml").read_text()
    loaded = load(text, env={"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "a"})
    assert loaded.config.routes


SHORTHAND_CASES = [
    ("provider/model", "[openai/gpt-4o]", [("openai", "gpt-4o")]),
    ("model names keep their slashes", "[groq/meta-llama/Llama-3-8b]",
     [("groq", "meta-llama/Llama-3-8b")]),
    ("mixed with mappings", "[openai/a, {provider: groq, model: b, weight: 2}]",
     [("openai", "a"), ("groq", "b")]),
]  # fmt: skip


@pytest.mark.parametrize(("fallbacks", "expected"), [c[1:] for c in SHORTHAND_CASES],
                         ids=[c[0] for c in SHORTHAND_CASES])  # fmt: skip
def test_shorthand(fallbacks: str, expected: list[tuple[str, str]]) -> None:
    config = load(PROVIDERS + f"routes:\n  chat: {{fallbacks: {fallbacks}}}\n").config
    assert [(t.provider, t.model) for t in config.routes["chat"].fallbacks] == expected


ROUTES = "routes:\n  chat: {fallbacks: [openai/m]}\n"

PROBLEM_CASES = [
    ("unknown provider in a route",
     PROVIDERS + "routes:\n  chat: {fallbacks: [openai/a, groq/b, x/c]}\n",
     ["routes.chat.fallbacks[2]: unknown provider 'x' (known: groq, openai)"]),
    ("shorthand without a model",
     PROVIDERS + "routes:\n  chat: {fallbacks: [openai]}\n",
     ["routes.chat.fallbacks[0]: model is empty"]),
    ("the same deployment twice",
     PROVIDERS + "routes:\n  chat: {fallbacks: [openai/a, groq/b, openai/a]}\n",
     ["routes.chat.fallbacks[2]: 'openai/a' listed twice"]),
    ("negative route timeout",
     PROVIDERS + "routes:\n  chat: {fallbacks: [openai/m], timeout: -1}\n",
     ["routes.chat.timeout: Input should be greater than 0"]),
    ("negative provider timeout",
     "providers:\n  openai: {kind: openai, timeouts: {connect: -0.5}}\n" + ROUTES,
     ["providers.openai.timeouts.connect: Input should be greater than 0"]),
    ("zero global idle timeout",
     "timeouts: {idle: 0}\n" + PROVIDERS + ROUTES,
     ["timeouts.idle: Input should be greater than 0"]),
    ("unknown top-level key",
     "retyr: {max_attempts: 2}\n" + PROVIDERS + ROUTES,
     ["retyr: unknown key (check spelling; see providers.yaml for the accepted keys)"]),
    ("unknown provider key",
     "providers:\n  openai: {kind: openai, apikey: k}\n" + ROUTES,
     ["providers.openai.apikey: unknown key (check spelling; see providers.yaml for the "
      "accepted keys)"]),
    ("unknown key in a fallback, and no spurious length error",
     PROVIDERS + "routes:\n  chat: {fallbacks: [{provider: openai, model: m, wieght: 2}]}\n",
     ["routes.chat.fallbacks[0].wieght: unknown key (check spelling; see providers.yaml for "
      "the accepted keys)"]),
    ("bad weight and priority",
     PROVIDERS + "routes:\n  chat: {fallbacks: [{provider: openai, model: m, weight: 0, "
     "priority: -1}]}\n",
     ["routes.chat.fallbacks[0].priority: Input should be greater than or equal to 0",
      "routes.chat.fallbacks[0].weight: Input should be greater than 0"]),
    ("empty fallbacks",
     PROVIDERS + "routes:\n  chat: {fallbacks: []}\n",
     ["routes.chat.fallbacks: Tuple should have at least 1 item after validation, not 0"]),
    ("unknown kind",
     "providers:\n  p: {kind: openia}\n" + ROUTES.replace("openai", "p"),
     ["providers.p.kind: Input should be 'openai', 'azure', 'vllm', 'ollama', 'groq', "
      "'mistral', 'together', 'openai_compatible', 'anthropic', 'bedrock', 'vertex_ai', "
      "'cohere' or 'gemini'"]),
    ("unknown rescue strategy",
     "providers:\n  openai: {kind: openai, capabilities: {rescue: [resume]}}\n" + ROUTES,
     ["providers.openai.capabilities.rescue[0]: Input should be 'continuation' or 'splice'"]),
    ("base_url required",
     "providers:\n  az: {kind: azure}\n  local: {kind: openai_compatible}\n"
     "routes:\n  chat: {fallbacks: [az/m, local/m]}\n",
     ["providers.az.base_url: required for kind 'azure'",
      "providers.local.base_url: required for kind 'openai_compatible'"]),
    ("port out of range",
     "server: {port: 70000}\n" + PROVIDERS + ROUTES,
     ["server.port: Input should be less than or equal to 65535"]),
    ("routes missing",
     PROVIDERS,
     ["routes: Field required"]),
    ("not a mapping",
     "- openai\n- groq\n",
     ["(top level): expected a mapping with 'providers' and 'routes'"]),
    ("every problem at once",
     PROVIDERS + "routes:\n  chat: {fallbacks: [x/m]}\n"
     "  embed: {fallbacks: [y/m, openai/m, openai/m]}\n",
     ["routes.chat.fallbacks[0]: unknown provider 'x' (known: groq, openai)",
      "routes.embed.fallbacks[0]: unknown provider 'y' (known: groq, openai)",
      "routes.embed.fallbacks[2]: 'openai/m' listed twice"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in PROBLEM_CASES],
                         ids=[c[0] for c in PROBLEM_CASES])  # fmt: skip
def test_problems_name_their_key_path(text: str, expected: list[str]) -> None:
    assert sorted(problems(text)) == sorted(expected)


YAML_CASES = [
    ("unclosed flow mapping", "providers:\n  a: {kind: openai\nroutes: {}\n",
     r"^line 3, column 7: YAML syntax error: "),
    ("bad indentation", "providers:\n  a:\n    kind: openai\n   bad: 1\nroutes: {}\n",
     r"^line 4, column 4: YAML syntax error: "),
    ("tab indentation", "providers:\n\ta: 1\n", r"^line 2, column 1: YAML syntax error: "),
    ("duplicate key", "providers:\n  a: {kind: openai}\n  a: {kind: groq}\nroutes: {}\n",
     r"^line 3: duplicate key 'a' \(first defined on line 2\)$"),
    ("duplicate key in a flow mapping", PROVIDERS + "routes:\n  chat: {fallbacks: [openai/m], "
     "timeout: 5, timeout: 6}\n", r"^line 6: duplicate key 'timeout' \(first defined on line 6\)$"),
    ("duplicate top-level key", PROVIDERS + ROUTES + "routes: {}\n",
     r"^line 7: duplicate key 'routes' \(first defined on line 5\)$"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "pattern"), [c[1:] for c in YAML_CASES],
                         ids=[c[0] for c in YAML_CASES])  # fmt: skip
def test_yaml_errors_name_the_line(text: str, pattern: str) -> None:
    found = problems(text)
    assert len(found) == 1
    assert re.search(pattern, found[0]), found[0]


def test_same_key_in_different_mappings_is_fine() -> None:
    load("providers:\n  a: {kind: openai, api_key: k}\n  b: {kind: openai, api_key: k}\n"
         "routes:\n  a: {fallbacks: [a/m]}\n  b: {fallbacks: [b/m]}\n")  # fmt: skip


ENV_TEXT = """
server: {port: "${PORT:-9000}"}
providers:
  openai: {kind: openai, api_key: "${OPENAI_API_KEY}"}
  local: {kind: openai_compatible, base_url: "${LOCAL_URL}", api_key: "${LOCAL_KEY:-none}"}
  anthropic: {kind: anthropic, api_key: "sk-${ANTHROPIC_KEY_PART}"}
routes:
  chat: {fallbacks: [openai/m, local/m, anthropic/m]}
"""


def test_env_substitution() -> None:
    env = {"OPENAI_API_KEY": "sk-a", "LOCAL_URL": "http://h:1/v1", "ANTHROPIC_KEY_PART": "xyz",
           "PORT": "8123"}  # fmt: skip
    loaded = load(ENV_TEXT, env)
    providers = loaded.config.providers
    assert loaded.config.server.port == 8123
    assert providers["local"].base_url == "http://h:1/v1"
    keys = {name: p.api_key.get_secret_value() for name, p in providers.items() if p.api_key}
    assert keys == {"openai": "sk-a", "local": "none", "anthropic": "sk-xyz"}
    assert loaded.disabled == {}


def test_env_defaults_apply_when_unset() -> None:
    env = {"OPENAI_API_KEY": "k", "LOCAL_URL": "http://h/v1", "ANTHROPIC_KEY_PART": "p"}
    assert load(ENV_TEXT, env).config.server.port == 9000


MISSING_KEY_CASES = [
    ("openai key unset", {"LOCAL_URL": "u", "ANTHROPIC_KEY_PART": "p"},
     {"openai": "OPENAI_API_KEY"}),
    ("part of a key unset", {"LOCAL_URL": "u", "OPENAI_API_KEY": "k"},
     {"anthropic": "ANTHROPIC_KEY_PART"}),
    ("two keys unset", {"LOCAL_URL": "u"},
     {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_KEY_PART"}),
]  # fmt: skip


@pytest.mark.parametrize(("env", "disabled"), [c[1:] for c in MISSING_KEY_CASES],
                         ids=[c[0] for c in MISSING_KEY_CASES])  # fmt: skip
def test_missing_api_key_disables_the_provider(
    env: dict[str, str], disabled: dict[str, str]
) -> None:
    loaded = load(ENV_TEXT, env)
    assert loaded.disabled == {name: f"environment variable {var} is not set"
                               for name, var in disabled.items()}  # fmt: skip
    for name in disabled:
        assert loaded.config.providers[name].api_key is None
    assert set(loaded.config.providers) == {"openai", "local", "anthropic"}


def test_missing_env_var_in_other_fields_is_an_error_naming_it() -> None:
    found = problems(ENV_TEXT, {"OPENAI_API_KEY": "k", "ANTHROPIC_KEY_PART": "p"})
    assert found[0] == ("providers.local.base_url: environment variable LOCAL_URL is not set "
                        "(export it, or write ${LOCAL_URL:-default})")  # fmt: skip
    assert all(p.startswith("providers.local.base_url: ") for p in found)


def test_missing_env_var_in_a_list_names_the_index() -> None:
    text = PROVIDERS + "routes:\n  chat: {fallbacks: [openai/m, '${SECOND}']}\n"
    found = problems(text)
    assert "routes.chat.fallbacks[1]: environment variable SECOND is not set" in found[0]


def test_env_comes_from_the_process_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_PORT", "8181")
    text = 'server: {port: "${GW_TEST_PORT}"}\n' + PROVIDERS + ROUTES
    assert load_text(text).config.server.port == 8181


KIND_CASES = [
    # kind, openai compatible, accepts prefill, rescue strategies, default base url
    ("openai", True, False, ("splice",), "https://api.openai.com/v1"),
    ("vllm", True, True, ("continuation", "splice"), "http://127.0.0.1:8000/v1"),
    ("anthropic", False, True, ("continuation", "splice"), None),
    ("gemini", False, False, ("splice",), None),
]


@pytest.mark.parametrize(("kind", "compatible", "prefill", "rescue", "base_url"), KIND_CASES)
def test_provider_defaults_by_kind(
    kind: str, compatible: bool, prefill: bool, rescue: tuple[str, ...], base_url: str | None
) -> None:
    text = f"providers:\n  p: {{kind: {kind}}}\nroutes:\n  chat: {{fallbacks: [p/m]}}\n"
    provider = load(text).config.providers["p"]
    assert provider.openai_compatible is compatible
    assert provider.accepts_prefill is prefill
    assert provider.rescue_strategies == rescue
    assert provider.resolved_base_url == base_url


def test_capabilities_override_the_kind() -> None:
    text = ("providers:\n  p: {kind: openai, capabilities: {prefill: true, rescue: [splice], "
            "stream_usage: false}}\nroutes:\n  chat: {fallbacks: [p/m]}\n")  # fmt: skip
    provider = load(text).config.providers["p"]
    assert provider.accepts_prefill is True
    assert provider.rescue_strategies == ("splice",)
    assert provider.asks_stream_usage is False


@pytest.mark.parametrize(
    ("kind", "asks"),
    [("openai", True), ("vllm", True), ("azure", False), ("openai_compatible", False),
     ("mistral", False)],
)  # fmt: skip
def test_stream_usage_is_asked_only_of_kinds_known_to_accept_it(kind: str, asks: bool) -> None:
    text = f"providers:\n  p: {{kind: {kind}, base_url: 'http://h/v1'}}\nroutes:\n  c: {{fallbacks: [p/m]}}\n"
    assert load(text).config.providers["p"].asks_stream_usage is asks


def test_provider_timeouts_override_the_global_ones() -> None:
    text = ("timeouts: {connect: 1}\nproviders:\n  a: {kind: openai, timeouts: {connect: 3}}\n"
            "  b: {kind: openai}\nroutes:\n  chat: {fallbacks: [a/m, b/m]}\n")  # fmt: skip
    config = load(text).config
    assert config.timeouts_for("a").connect == 3.0
    assert config.timeouts_for("b").connect == 1.0


def test_config_is_frozen() -> None:
    config = load(PROVIDERS + ROUTES).config
    with pytest.raises(ValueError, match="frozen"):
        config.server.port = 1


def test_digest_follows_the_text() -> None:
    a = load(PROVIDERS + ROUTES).digest
    assert a == load(PROVIDERS + ROUTES).digest
    assert a != load(PROVIDERS + ROUTES.replace("openai/m", "groq/m")).digest
    assert len(a) == 12


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(PROVIDERS + ROUTES)
    assert load_file(path, env={}).source == str(path)
    with pytest.raises(ConfigError) as caught:
        load_file(tmp_path / "missing.yaml")
    assert caught.value.source == str(tmp_path / "missing.yaml")
    assert caught.value.problems[0].startswith("file not found")
