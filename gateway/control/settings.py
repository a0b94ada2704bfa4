"""The `admin:` and `state:` sections of providers.yaml (read at start; a reload that
changes them is accepted but they take effect at the next restart)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from gateway.strict_model import StrictModel

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class AdminConfig(StrictModel):
    """The admin API: its own listener (loopback unless told otherwise) and bearer tokens.

    `tokens` maps a token's name (recorded in the audit log as who made a change) to the
    environment variable that holds the token itself; the token never appears in config.
    """

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)
    tokens: dict[str, str] = Field(default_factory=lambda: {"admin": "GATEWAY_ADMIN_TOKEN"})

    @field_validator("tokens")
    @classmethod
    def _check_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        for name, env in value.items():
            if not _TOKEN_NAME.match(name):
                raise ValueError(f"token name '{name}': use letters, digits and . _ @ - only")
            if not _ENV_NAME.match(env):
                raise ValueError(
                    f"token '{name}': '{env}' is not an environment variable name "
                    "(write the variable's name, e.g. GATEWAY_ADMIN_TOKEN, not its value)"
                )
        return value


class StateConfig(StrictModel):
    """Where runtime overrides and the audit log persist.

    With `redis_url`, in Redis (every replica follows within a second; a restarted
    replica picks them up); else in `state_file` when set (single node; the audit log is
    `<state_file>.audit.jsonl`); else in memory only. Put `state_file` on a writable
    path: a mounted config folder is often read-only.
    """

    state_file: str | None = None
    redis_url: SecretStr | None = None
    redis_prefix: str = Field(default="failover-gateway", min_length=1, max_length=100)
    sync_interval: float = Field(default=0.25, gt=0, le=5, description="Redis poll period")

    @field_validator("state_file", "redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `${REDIS_URL:-}` substitutes to "" when the variable is not set
        return None if value == "" else value
