"""Deterministic answer text: a pure function of the last user message and a salt.

The same prompt always yields the same 24-40 word answer, whichever vendor or model
serves it, so a test can tell a complete answer from a truncated or badly spliced one.
A vendor's `answer_salt` stands for "a different model": it changes every answer.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

# 256 distinct words, so each digest byte picks one directly.
# fmt: off
WORDS: Final = (
    "amber", "anchor", "apple", "arch", "arrow", "atlas", "autumn", "avenue",
    "badge", "bamboo", "banner", "barley", "basin", "beacon", "berry", "birch",
    "blanket", "bloom", "bolt", "border", "bottle", "branch", "breeze", "brick",
    "bridge", "bronze", "bucket", "butter", "cabin", "cactus", "canal", "candle",
    "canyon", "carbon", "cargo", "castle", "cedar", "cellar", "chalk", "channel",
    "cherry", "circle", "citrus", "cliff", "clover", "cobalt", "comet", "copper",
    "coral", "cotton", "crane", "crater", "crystal", "current", "dahlia", "dawn",
    "delta", "desert", "dial", "dome", "dune", "eagle", "echo", "ember",
    "engine", "falcon", "feather", "fern", "ferry", "fiber", "field", "flint",
    "forest", "fossil", "fountain", "frame", "frost", "galaxy", "garden", "garnet",
    "gate", "glacier", "glass", "granite", "grove", "harbor", "harvest", "hazel",
    "helmet", "heron", "hill", "horizon", "hollow", "honey", "iris", "island",
    "ivory", "jade", "jasmine", "jetty", "juniper", "kernel", "kettle", "lagoon",
    "lantern", "lattice", "laurel", "lemon", "lever", "lily", "linen", "lotus",
    "magnet", "maple", "marble", "meadow", "mesa", "meteor", "mill", "mint",
    "mirror", "monsoon", "mosaic", "moss", "mountain", "nectar", "needle", "nickel",
    "north", "oasis", "ocean", "olive", "onyx", "orbit", "orchard", "otter",
    "paddle", "palm", "paper", "pebble", "pepper", "pier", "pine", "planet",
    "plaza", "plume", "pocket", "pollen", "pond", "poplar", "prairie", "prism",
    "pulse", "quartz", "quill", "rain", "raven", "reef", "ribbon", "ridge",
    "river", "robin", "rocket", "saddle", "saffron", "sail", "salmon", "sand",
    "satin", "scarlet", "shadow", "shell", "signal", "silver", "slate", "sparrow",
    "spiral", "spruce", "spring", "stone", "storm", "summit", "sunset", "swallow",
    "table", "tangent", "temple", "thistle", "thunder", "tide", "timber", "topaz",
    "torch", "tower", "trail", "tulip", "tundra", "tunnel", "valley", "vapor",
    "velvet", "vessel", "violet", "voyage", "walnut", "wander", "wave", "willow",
    "window", "winter", "wren", "yarrow", "zenith", "zephyr", "acorn", "alloy",
    "basalt", "cinder", "drift", "ermine", "fjord", "gravel", "hearth", "inlet",
    "jewel", "kelp", "ledger", "marsh", "nebula", "opal", "parcel", "quiver",
    "rapids", "scroll", "thicket", "umber", "vista", "wharf", "yonder", "zinc",
    "beetle", "cobble", "dapple", "egret", "fable", "glimmer", "hamlet", "ingot",
    "jostle", "knoll", "lumen", "mantle", "nimbus", "oriole", "pennant", "quarry",
)
# fmt: on


def expected_answer(prompt: str, salt: str = "") -> str:
    """The full answer any simulated vendor with this `answer_salt` gives to `prompt`."""
    salt_bytes = salt.encode()
    digest = hashlib.blake2b(
        len(salt_bytes).to_bytes(4, "big") + salt_bytes + prompt.encode(), digest_size=64
    ).digest()
    count = 24 + digest[0] % 17
    words = [WORDS[byte] for byte in digest[1 : 1 + count]]
    return " ".join(words).capitalize() + "."


def segments(text: str) -> list[str]:
    """Words with their leading whitespace; joined they give `text` back exactly."""
    return re.findall(r"\s*\S+|\s+", text)


def take_words(text: str, limit: int) -> tuple[str, bool]:
    """The first `limit` words of `text`, and whether anything was cut off."""
    parts = segments(text)
    if len(parts) <= limit:
        return text, False
    return "".join(parts[:limit]), True


def split_words(text: str, pieces: int) -> list[str]:
    """`text` in at most `pieces` chunks of near-equal word counts, split at word boundaries."""
    return _group(segments(text), pieces)


def split_chars(text: str, pieces: int) -> list[str]:
    """`text` in at most `pieces` chunks of near-equal length (for tool-call arguments)."""
    return _group(list(text), pieces)


def _group(parts: list[str], pieces: int) -> list[str]:
    count = min(max(pieces, 1), len(parts))
    if count == 0:
        return []
    size, extra = divmod(len(parts), count)
    chunks: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append("".join(parts[start:end]))
        start = end
    return chunks


def count_words(text: str) -> int:
    return len(segments(text))


def estimate_tokens(chars: int) -> int:
    """A rough token count for `chars` characters of prompt (about four per token)."""
    return max(1, (chars + 3) // 4)


def digest_hex(text: str, size: int = 12) -> str:
    """A stable hex tag of `text` (for tool-call ids)."""
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()
