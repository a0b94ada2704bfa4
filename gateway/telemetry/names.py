"""The name of every span, metric and attribute the gateway emits, in one place.

Spans follow the OpenTelemetry GenAI semantic conventions where they apply
(`gen_ai.*`); the rest is `gateway.*`. Metric names are OpenTelemetry names; Prometheus
sees them with dots as underscores, `_total` on counters and `_seconds` on durations
(`gateway.requests` -> `gateway_requests_total`). Metric label values are bounded:
alias, provider, deployment, outcome, reason, state, type -- never a request id, a user
string or a prompt.
"""

from __future__ import annotations

TRACER = "gateway"
METER = "gateway"

# GenAI semantic conventions
OPERATION = "gen_ai.operation.name"  # "chat" | "embeddings"
SYSTEM = "gen_ai.system"  # deprecated name of gen_ai.provider.name; both are set
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_STREAM = "gen_ai.request.stream"  # not (yet) a convention; named in its style
ERROR_TYPE = "error.type"
HTTP_METHOD = "http.request.method"
HTTP_STATUS = "http.response.status_code"
URL_PATH = "url.path"

# gateway attributes
REQUEST_ID = "gateway.request_id"  # spans and logs only, never a metric label
ALIAS = "gateway.alias"
PROVIDER = "gateway.provider"  # the configured provider name, e.g. "alpha"
DEPLOYMENT = "gateway.deployment"
ATTEMPT = "gateway.attempt"  # 1-based among attempts that reached a vendor
ATTEMPTS = "gateway.attempts"
OUTCOME = "gateway.outcome"
REASON = "gateway.reason"
TTFT_MS = "gateway.ttft_ms"
COST_USD = "gateway.cost_usd"
ROUTE = "gateway.route"  # the compact x-gateway-route value
SKIPPED_EVENT = "gateway.deployment_skipped"

# metrics (OpenTelemetry names)
REQUESTS = "gateway.requests"
REJECTED = "gateway.rejected_requests"
ATTEMPTS_METRIC = "gateway.attempts"
FAILOVERS = "gateway.failovers"
TOKENS = "gateway.tokens"
COST = "gateway.cost.usd"
REQUEST_DURATION = "gateway.request.duration"
TTFT = "gateway.time_to_first_token"
BREAKER_STATE = "gateway.breaker.state"
BREAKER_TRANSITIONS = "gateway.breaker.transitions"
DEPLOYMENT_STATE = "gateway.deployment.state"
DEPLOYMENT_IN_FLIGHT = "gateway.deployment.in_flight"
DEPLOYMENT_TTFT_EWMA = "gateway.deployment.ttft_ewma"
ALIAS_AVAILABLE = "gateway.alias.available_deployments"
PROBES = "gateway.probes"
EJECTIONS = "gateway.ejections"
FAULT_INJECTION_ENABLED = "gateway.fault_injection.enabled"  # staging fault layer on?
FAULT_INJECTION_RULES = "gateway.fault_injection.rules"  # active rules per deployment
FAULT_INJECTIONS = "gateway.fault_injection.injected"  # requests it affected
CONFIG_RELOAD_REJECTIONS = "gateway.config.reload_rejections"  # invalid files kept out

# metric label keys
L_ALIAS = "alias"
L_PROVIDER = "provider"
L_DEPLOYMENT = "deployment"
L_OUTCOME = "outcome"
L_REASON = "reason"
L_STATE = "state"
L_TYPE = "type"
L_RESULT = "result"
L_CAUSE = "cause"
L_ACTION = "action"  # fault injection: abort | delay | stall | cut
L_ENDPOINT = "endpoint"  # chat | embeddings
L_CODE = "code"  # the OpenAI error code of a refused request (set in code, bounded)

DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip

# gen_ai.provider.name for our provider kinds (the kind itself where no value is defined)
GENAI_PROVIDER = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "cohere": "cohere",
    "groq": "groq",
    "mistral": "mistral_ai",
}


def request_outcome(status: int, served: bool) -> str:
    """Bounded outcome class of a request, from the status the client got."""
    if status < 400:
        return "ok"
    if status == 499:
        return "cancelled"
    if status < 500:
        return "rejected"  # the vendor refused the request (the caller's fault)
    return "interrupted" if served else "failed"
