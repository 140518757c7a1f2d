"""Token usage as the upstream reported it, split by price class.

Anthropic's `input_tokens` excludes cache reads and writes; `cache_creation_input_tokens` is the total
written, and `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens` split it by TTL when
given. Streams report usage in `message_start` and (cumulatively, overriding) in `message_delta`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    def merge_anthropic(self, u: dict[str, Any] | None) -> None:
        """Apply an Anthropic usage object; fields present override (they are cumulative totals)."""
        if not u:
            return
        v = u.get("input_tokens")
        if isinstance(v, int):
            self.input_tokens = v
        v = u.get("output_tokens")
        if isinstance(v, int):
            self.output_tokens = v
        v = u.get("cache_read_input_tokens")
        if isinstance(v, int):
            self.cache_read_tokens = v
        total = u.get("cache_creation_input_tokens")
        split = u.get("cache_creation")
        if isinstance(split, dict):
            t5 = split.get("ephemeral_5m_input_tokens") or 0
            t1 = split.get("ephemeral_1h_input_tokens") or 0
            # When the total exceeds the split (older shapes), the rest was written at the default 5m TTL.
            rest = (total - t5 - t1) if isinstance(total, int) and total > t5 + t1 else 0
            self.cache_write_5m_tokens = t5 + rest
            self.cache_write_1h_tokens = t1
        elif isinstance(total, int):
            # A total without its split (message_delta often omits it) keeps the 1h part already known.
            if total >= self.cache_write_1h_tokens:
                self.cache_write_5m_tokens = total - self.cache_write_1h_tokens
            else:
                self.cache_write_5m_tokens, self.cache_write_1h_tokens = total, 0

    @classmethod
    def from_anthropic(cls, u: dict[str, Any] | None) -> Usage:
        out = cls()
        out.merge_anthropic(u)
        return out

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_5m_tokens": self.cache_write_5m_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
        }
