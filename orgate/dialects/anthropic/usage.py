"""Anthropic usage objects into the canonical Usage.

Anthropic's `input_tokens` excludes cache reads and writes; `cache_creation_input_tokens` is the total
written, and `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens` split it by TTL when
given. Streams report usage in `message_start` and (cumulatively, overriding) in `message_delta`.
"""

from __future__ import annotations

from typing import Any

from orgate.core.usage import Usage


def merge_usage(usage: Usage, u: dict[str, Any] | None) -> None:
    """Apply an Anthropic usage object; fields present override (they are cumulative totals)."""
    if not u or not isinstance(u, dict):
        return
    v = u.get("input_tokens")
    if isinstance(v, int):
        usage.input_tokens = v
    v = u.get("output_tokens")
    if isinstance(v, int):
        usage.output_tokens = v
    v = u.get("cache_read_input_tokens")
    if isinstance(v, int):
        usage.cache_read_tokens = v
    total = u.get("cache_creation_input_tokens")
    split = u.get("cache_creation")
    if isinstance(split, dict):
        t5, t1 = _count(split.get("ephemeral_5m_input_tokens")), _count(split.get("ephemeral_1h_input_tokens"))
        # When the total exceeds the split (older shapes), the rest was written at the default 5m TTL.
        rest = (total - t5 - t1) if isinstance(total, int) and total > t5 + t1 else 0
        usage.cache_write_5m_tokens = t5 + rest
        usage.cache_write_1h_tokens = t1
    elif isinstance(total, int):
        # A total without its split (message_delta often omits it) keeps the 1h part already known.
        if total >= usage.cache_write_1h_tokens:
            usage.cache_write_5m_tokens = total - usage.cache_write_1h_tokens
        else:
            usage.cache_write_5m_tokens, usage.cache_write_1h_tokens = total, 0


def _count(v: Any) -> int:
    """A token count as given, or 0 when the field is absent or not an integer (never a crash on it)."""
    return v if isinstance(v, int) else 0


def usage_from(u: dict[str, Any] | None) -> Usage:
    out = Usage()
    merge_usage(out, u)
    return out
