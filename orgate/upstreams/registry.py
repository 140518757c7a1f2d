"""One adapter instance per configured provider, built once at startup.

Claude upstreams (anthropic, bedrock, vertex) are wrapped with the thinking-signature rule
(upstreams/thinking.py); OpenAI-compatible ones (openai, openai_compatible) serve the chat relay.
"""

from __future__ import annotations

from orgate.config import Settings
from orgate.upstreams.anthropic import AnthropicUpstream
from orgate.upstreams.base import ClaudeUpstream
from orgate.upstreams.thinking import SignatureRepair


def build_upstreams(settings: Settings) -> dict[str, ClaudeUpstream]:
    out: dict[str, ClaudeUpstream] = {}
    for name, p in settings.providers.items():
        up: ClaudeUpstream
        if p.type == "anthropic":
            up = AnthropicUpstream(name, p, settings.routing)
        elif p.type == "bedrock":
            from orgate.upstreams.bedrock import BedrockUpstream
            from orgate.upstreams.bedrock_messages import catalog_apis

            up = BedrockUpstream(name, p, settings.routing, catalog_apis(settings))
        elif p.type == "vertex":
            from orgate.upstreams.vertex import VertexUpstream

            up = VertexUpstream(name, p, settings.routing)
        elif p.type in ("openai", "openai_compatible"):
            from orgate.upstreams.openai_compat import OpenAICompatUpstream

            out[name] = OpenAICompatUpstream(name, p, settings.routing)
            continue
        else:
            continue
        out[name] = SignatureRepair(up)
    return out
