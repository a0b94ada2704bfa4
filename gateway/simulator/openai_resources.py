"""OpenAI's non-chat resources: `POST /v1/embeddings` and `GET /v1/models`."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

import orjson

from gateway.simulator.answers import estimate_tokens
from gateway.simulator.errors import invalid_request
from gateway.simulator.exchange import Answer
from gateway.simulator.vendor import Vendor

DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 4096
MODELS_CREATED = 1_700_000_000


def expected_embedding(
    text: str, dimensions: int = DEFAULT_DIMENSIONS, salt: str = ""
) -> list[float]:
    """The unit vector a simulated vendor with this `answer_salt` returns for `text`."""
    digest = hashlib.shake_128(f"{len(salt)}:{salt}{text}".encode()).digest(2 * dimensions)
    raw = [
        int.from_bytes(digest[i : i + 2], "big") / 32767.5 - 1.0 for i in range(0, len(digest), 2)
    ]
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    # Rounded to float32 so the base64 (float32) and JSON encodings decode to equal values.
    packed = struct.pack(f"<{dimensions}f", *(value / norm for value in raw))
    return list(struct.unpack(f"<{dimensions}f", packed))


def answer_embeddings(vendor: Vendor, body: dict[str, Any]) -> Answer:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return invalid_request("You must provide a model parameter.", "model")
    inputs = _inputs(body.get("input"))
    if inputs is None:
        return invalid_request("'input' must be a string or a non-empty array.", "input")
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        message = f"'dimensions' must be between 1 and {MAX_DIMENSIONS}."
        return invalid_request(message, "dimensions")
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = expected_embedding(text, dimensions, vendor.spec.answer_salt)
        encoded: list[float] | str = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(estimate_tokens(len(text)) for text in inputs)
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def answer_models(vendor: Vendor, body: dict[str, Any]) -> Answer:
    del body  # GET: nothing to read
    models = [
        {"id": name, "object": "model", "created": MODELS_CREATED, "owned_by": vendor.spec.name}
        for name in vendor.spec.models
    ]
    return orjson.dumps({"object": "list", "data": models})


def _inputs(value: Any) -> list[str] | None:
    """Strings to embed; token arrays are embedded by their text form."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, int) for item in value):
        return [str(value)]
    if all(isinstance(item, str | list) for item in value):
        return [item if isinstance(item, str) else str(item) for item in value]
    return None
