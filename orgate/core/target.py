"""One deployment ready to call: the value the router orders and an upstream adapter is called with."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # Derived once: the router reads the label several times per request (circuits are keyed by it), and
    # a property built the string again at every read. Not compared, hashed or shown: the fields above are.
    label: str = field(init=False, compare=False, repr=False)
    family: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", f"{self.provider}/{self.upstream_model}")
        object.__setattr__(self, "family", "openai" if self.provider_type in OPENAI_TYPES else "claude")
