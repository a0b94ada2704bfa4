"""Simulated LLM vendors on loopback, speaking the real OpenAI and Anthropic wire formats,
with faults switchable at run time.

Each vendor serves `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`
(OpenAI) and `POST /v1/messages` (Anthropic), plus the `/_sim` control routes. Answers
are deterministic (`expected_answer`). Faults (`FaultSpec.kind`):

status            answer with HTTP `status` in the vendor's error shape
rate_limit        429, with optional Retry-After / retry-after-ms / x-ratelimit-reset-requests
latency           wait `delay_ms`, then answer normally
slow_first_token  stream: headers, then wait `delay_ms` before the first event
hang              never answer (until the client leaves or the server stops)
reset             TCP reset before any response header
malformed         invalid JSON body / an invalid event after `after_chunks` good ones
cut               disconnect after `after_chunks` events / after half the body
stall             go silent after `after_chunks` events / half the body, connection open
no_done           stream completes without its terminal event (`[DONE]` / message_stop)
context_length    400 context_length_exceeded / "prompt is too long"
content_policy    400 content_policy_violation / content filtering

Besides faults, `await handle.go_down()` closes a vendor's port (connection refused, open
connections aborted) and `await handle.come_up()` reopens it on the same port.

Run them with `VendorFleet.start([...])` (background thread), `serve_vendors([...])`
(current loop) or `python -m gateway.simulator --name alpha --port 9001`.
"""

from gateway.simulator.answers import expected_answer
from gateway.simulator.faults import FaultKind, FaultSpec, PathKind
from gateway.simulator.fleet import VendorFleet, VendorHandle, serve_vendors
from gateway.simulator.openai_resources import expected_embedding
from gateway.simulator.stats import RecordedRequest, StatsSnapshot
from gateway.simulator.vendor import VendorSpec

__all__ = [
    "FaultKind",
    "FaultSpec",
    "PathKind",
    "RecordedRequest",
    "StatsSnapshot",
    "VendorFleet",
    "VendorHandle",
    "VendorSpec",
    "expected_answer",
    "expected_embedding",
    "serve_vendors",
]
