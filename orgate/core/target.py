"""One deployment ready to call: the value the router orders and an upstream adapter is called with."""

from __future__ import annotations

from dataclasses import dataclass

# Provider types that speak OpenAI Chat Completions; every other type speaks Anthropic Messages (Claude).
# A request never falls back from one family to the other (the bodies are not interchangeable).
CLAUDE_TYPES = frozenset({"anthropic", "bedrock", "vertex"})
OPENAI_TYPES = frozenset({"openai", "openai_compatible"})


@dataclass(frozen=True, slots=True)
class Target:
    provider: str  # the provider's name in config
    provider_type: str
    upstream_model: str
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.upstream_model}"

    @property
    def family(self) -> str:
        return "openai" if self.provider_type in OPENAI_TYPES else "claude"
