"""`redact`: known secrets and key-shaped strings never reach a client or a log."""

from __future__ import annotations

import pytest

from gateway.errors import (
    ConfigError,
    GatewayError,
    ReplayDiverged,
    UnknownModel,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    redact,
)

R = "[REDACTED]"

REDACT_CASES = [
    # text, known secrets, expected
    ("the provider's own key", "bad key abc-123-xyz given", ["abc-123-xyz"],
     f"bad key {R} given"),
    ("every occurrence of a known key", "k9k9k9 and k9k9k9", ["k9k9k9"], f"{R} and {R}"),
    ("secrets shorter than 4 are not replaced", "abc is not secret", ["abc", ""],
     "abc is not secret"),
    ("OpenAI key", "Incorrect API key provided: sk-abc12345. You can find it",
     [], f"Incorrect API key provided: {R}. You can find it"),
    ("OpenAI project key", "key sk-proj-AbC_dEf-123456789", [], f"key {R}"),
    ("Anthropic key", "x sk-ant-api03-abcdefghijk y", [], f"x {R} y"),
    ("bearer token", "sent Bearer eyJhbGciOi.J9.abc= today", [], f"sent Bearer {R} today"),
    ("Authorization header with a bearer token",
     "Authorization: Bearer sk-abcdefghijklmnop", [], f"Authorization: Bearer {R}"),
    ("Authorization header with Basic credentials",
     "Authorization: Basic dXNlcjpwYXNzd29yZA==", [], f"Authorization: Basic {R}"),
    ("JSON api_key field", '{"api_key": "secretvalue123"}', [], f'{{"api_key": "{R}"}}'),
    ("x-api-key header", "x-api-key: abcdef123456", [], f"x-api-key: {R}"),
    ("api-key query parameter", "GET /v1/chat?api-key=abcdef123456 failed", [],
     f"GET /v1/chat?api-key={R} failed"),
    ("token assignment", "token=abcdefgh", [], f"token={R}"),
    ("AWS access key id", "AKIAABCDEFGHIJKLMNOP denied", [], f"{R} denied"),
    # ordinary vendor text is left alone
    ("max_tokens", "max_tokens: 4096 is too large", [], "max_tokens: 4096 is too large"),
    ("context length message",
     "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",
     [], "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens"),
    ("prose about keys", "The api_key client option must be set", [],
     "The api_key client option must be set"),
    ("words ending in sk-", "task-abcdefghijk and desk-0123456789", [],
     "task-abcdefghijk and desk-0123456789"),
    ("short sk- words", "ok sk-short", [], "ok sk-short"),
    ("an already masked key", "sk-proj-****abcd", [], "sk-proj-****abcd"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secrets", "expected"), [c[1:] for c in REDACT_CASES],
                         ids=[c[0] for c in REDACT_CASES])  # fmt: skip
def test_redact(text: str, secrets: list[str], expected: str) -> None:
    assert redact(text, secrets) == expected


@pytest.mark.parametrize("text", [c[1] for c in REDACT_CASES], ids=[c[0] for c in REDACT_CASES])
def test_redact_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_upstream_error_lowercases_header_names() -> None:
    error = UpstreamStatusError("x", status=429, headers={"Retry-After": "2", "X-A": "b"})
    assert error.headers == {"retry-after": "2", "x-a": "b"}
    assert (error.status, error.reason) == (429, "status")


TREE_CASES = [
    (UpstreamTimeout("t", phase="idle"), UpstreamError, "timeout"),
    (ReplayDiverged("d"), UpstreamError, "replay_diverged"),
    (UpstreamError("e"), GatewayError, "upstream_error"),
]


@pytest.mark.parametrize(("error", "base", "reason"), TREE_CASES)
def test_tree(error: UpstreamError, base: type[Exception], reason: str) -> None:
    assert isinstance(error, base)
    assert error.reason == reason


def test_config_error_joins_its_problems() -> None:
    error = ConfigError(["a.b: bad", "c: worse"], "gw.yaml")
    assert str(error) == "gw.yaml: a.b: bad; c: worse"
    assert str(ConfigError(["x: y"])) == "x: y"


def test_unknown_model_lists_the_configured_aliases() -> None:
    error = UnknownModel("gpt-5", ["fast", "chat"])
    assert (error.status, error.code, error.param) == (404, "model_not_found", "model")
    assert "Configured models: chat, fast." in error.message
    assert "Configured models: none." in UnknownModel("x", []).message
