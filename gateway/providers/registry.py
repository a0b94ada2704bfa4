"""Which adapter serves a provider: chosen by its `kind`."""

from __future__ import annotations

import aiohttp

from gateway.config import LITELLM_KINDS, OPENAI_COMPATIBLE_KINDS, ProviderConfig
from gateway.providers.base import Adapter
from gateway.providers.openai_compat import OpenAICompatAdapter


def build_adapter(name: str, provider: ProviderConfig, session: aiohttp.ClientSession) -> Adapter:
    """The adapter for `provider`. litellm's shares the caller's pooled `session`; the
    pass-through adapter keeps lean connections of its own (its hot path).

    litellm is imported only when a provider needs it (its import takes seconds).
    """
    if provider.kind in OPENAI_COMPATIBLE_KINDS:
        return OpenAICompatAdapter(name, provider)  # keeps connections of its own
    if provider.kind in LITELLM_KINDS:
        from gateway.providers.litellm_adapter import LiteLLMAdapter

        return LiteLLMAdapter(name, provider, session)
    raise ValueError(f"provider '{name}': no adapter for kind '{provider.kind}'")
