"""The gateway's one exception tree.

    GatewayError
    ├── ConfigError              bad providers.yaml; message names the key path
    ├── ClientRequestError       the caller's request is wrong (4xx, never retried)
    │   ├── InvalidRequest       400 bad JSON / bad field
    │   └── UnknownModel         404 alias not configured
    ├── VendorRejected           a vendor's 4xx, returned to the client as is (redacted)
    ├── UpstreamError            one attempt at one deployment failed
    │   ├── UpstreamConnectError connect refused, DNS, TLS, reset before headers
    │   ├── UpstreamTimeout      connect / first token / idle / total deadline
    │   ├── UpstreamStatusError  the vendor answered with a non-2xx status
    │   ├── UpstreamProtocolError malformed or truncated body or chunk
    │   ├── UpstreamStreamCut    a started stream broke or ended without finishing
    │   └── ReplayDiverged       a rescue replay did not reproduce the delivered text
    └── NoDeploymentSucceeded    every attempt failed; carries each attempt's record

Adapters translate their library's exceptions into `UpstreamError` subclasses at the
edge (`raise ... from exc`); nothing above the adapters sees aiohttp or litellm errors.
Messages must never contain secrets: adapters pass vendor text through `redact`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Each pattern keeps group "keep" (a label such as "Bearer ") and masks the rest.
_SECRET_PATTERNS = (
    re.compile(r"(?P<keep>)\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(?P<keep>bearer\s+)[A-Za-z0-9_\-\.=]{8,}"),
    re.compile(
        r"(?i)(?P<keep>(?:api[_-]?key|x-api-key|authorization|token)[\"']?\s*[:=]\s*[\"']?"
        r"(?:(?:bearer|basic)\s+)?)[^\s\"',}]{6,}"
    ),
    re.compile(r"(?P<keep>)AKIA[0-9A-Z]{16}"),
)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove known secrets and anything shaped like a key from `text`."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[REDACTED]")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group("keep") + "[REDACTED]", text)
    return text


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """providers.yaml (or a runtime change) is invalid. `problems` lists `path: message`."""

    def __init__(self, problems: Sequence[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(self.problems))


class ClientRequestError(GatewayError):
    """The caller's request is wrong; answered with `status`, never retried."""

    status = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        self.message = message
        self.code = code
        self.param = param
        super().__init__(message)


class InvalidRequest(ClientRequestError):
    status = 400


class UnknownModel(ClientRequestError):
    status = 404

    def __init__(self, model: str, known: Sequence[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"The model '{model}' does not exist on this gateway. Configured models: {listed}.",
            code="model_not_found",
            param="model",
        )


class UpstreamError(GatewayError):
    """One attempt failed. `reason` is a short bounded label used in metrics and bodies."""

    reason = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        vendor_code: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body
        self.vendor_code = vendor_code
        super().__init__(message)


class UpstreamConnectError(UpstreamError):
    reason = "connect_error"


class UpstreamTimeout(UpstreamError):
    """`phase` is one of connect, first_token, idle, request, deadline."""

    reason = "timeout"

    def __init__(self, message: str, *, phase: str) -> None:
        self.phase = phase
        super().__init__(message)


class UpstreamStatusError(UpstreamError):
    reason = "status"


class UpstreamProtocolError(UpstreamError):
    reason = "malformed_response"


class UpstreamStreamCut(UpstreamError):
    reason = "stream_cut"


class ReplayDiverged(UpstreamError):
    """Not the vendor's fault: its (valid) answer differs from what the client already has."""

    reason = "replay_diverged"


class VendorRejected(GatewayError):
    """The vendor refused the request (4xx); its status and message go back to the client."""

    def __init__(self, error: UpstreamError, reason: str, deployment: str) -> None:
        self.error = error
        self.reason = reason
        self.deployment = deployment
        super().__init__(error.message)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one attempt did, as shown to the client and in telemetry (no secrets)."""

    deployment: str
    provider: str
    model: str
    outcome: str  # ok | retry | failover | returned | skipped
    reason: str  # bounded label, e.g. status_503, timeout_first_token, rate_limited
    status: int | None
    message: str
    duration_ms: float


class NoDeploymentSucceeded(GatewayError):
    """Every candidate failed or was skipped; answered 503 (or 502) with `Retry-After`."""

    def __init__(
        self, alias: str, attempts: Sequence[AttemptRecord], *, retry_after: float, status: int
    ) -> None:
        self.alias = alias
        self.attempts = list(attempts)
        self.retry_after = retry_after
        self.status = status
        super().__init__(f"All deployments for model '{alias}' failed")
