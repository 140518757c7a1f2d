"""One adapter instance per configured provider, built once at startup."""

from __future__ import annotations

from orgate.config import Settings
from orgate.upstreams.anthropic import AnthropicUpstream
from orgate.upstreams.base import ClaudeUpstream


def build_upstreams(settings: Settings) -> dict[str, ClaudeUpstream]:
    out: dict[str, ClaudeUpstream] = {}
    for name, p in settings.providers.items():
        if p.type == "anthropic":
            out[name] = AnthropicUpstream(name, p, settings.routing)
        elif p.type == "bedrock":
            from orgate.upstreams.bedrock import BedrockUpstream

            out[name] = BedrockUpstream(name, p, settings.routing)
        elif p.type == "vertex":
            from orgate.upstreams.vertex import VertexUpstream

            out[name] = VertexUpstream(name, p, settings.routing)
    return out
