"""Token usage split by price class: the canonical shape every dialect reads into and pricing bills.

`input_tokens` excludes cache reads and writes (Anthropic's convention, the hub's); cache writes are split
by TTL because the two are priced differently. Reading a provider's usage object is a dialect's job
(dialects/anthropic/usage.py, the OpenAI relay's reader): this type knows no wire format.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        """All input the model read, cache included: OpenAI's `prompt_tokens`."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_5m_tokens": self.cache_write_5m_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
        }
