"""Anthropic's prompt cache as documented (api-reference §A.8; platform docs "Prompt caching"), for the fakes.

- The prompt is the sequence tools -> system blocks -> message content blocks; a string `system` or message
  content is one block. A block's tokens here: its JSON without `cache_control`, one token per 4 bytes.
- Each `cache_control` block is a breakpoint; more than 4 is a 400. A top-level `cache_control` (automatic
  caching) puts one on the last cacheable block.
- Prefixes are hashed block by block (with the model). At each breakpoint the cache is looked up at that
  block boundary and up to 19 boundaries before it (the documented 20-block lookback); the longest hit is
  read (`cache_read_input_tokens`). The prefix from the hit to the last breakpoint is written
  (`cache_creation_input_tokens`), each breakpoint's prefix stored. Prefixes shorter than the model's
  minimum (1,024 tokens here) are neither read nor written. The rest is `input_tokens`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

LOOKBACK = 20
MIN_TOKENS = 1024
MAX_BREAKPOINTS = 4


class TooManyBreakpoints(ValueError):
    pass


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append({"type": "text", "text": system})
    elif isinstance(system, list):
        out += [b for b in system if isinstance(b, dict)]
    for m in body.get("messages") or []:
        content = m.get("content")
        if isinstance(content, str):
            out.append({"type": "text", "text": content, "_role": m.get("role")})
        else:
            out += [{**b, "_role": m.get("role")} for b in content or [] if isinstance(b, dict)]
    return out


def tokens_of(block: dict[str, Any]) -> int:
    return max(1, len(orjson.dumps({k: v for k, v in block.items() if k != "cache_control"})) // 4)


class PromptCache:
    def __init__(self, min_tokens: int = MIN_TOKENS) -> None:
        self.min_tokens = min_tokens
        self.entries: set[bytes] = set()

    def usage(self, body: dict[str, Any]) -> dict[str, int]:
        """The input-side usage for `body`, updating the cache as the API would."""
        blocks = _blocks(body)
        breakpoints = [i for i, b in enumerate(blocks) if "cache_control" in b]
        if "cache_control" in body and blocks:
            last = next((i for i in range(len(blocks) - 1, -1, -1)
                         if blocks[i].get("type") not in ("thinking", "redacted_thinking")), None)
            if last is not None and last not in breakpoints:
                breakpoints.append(last)
        if len(breakpoints) > MAX_BREAKPOINTS:
            raise TooManyBreakpoints(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                                     f"Found {len(breakpoints)}.")
        hashes, cumulative = [], []
        h, total = hashlib.sha256(str(body.get("model")).encode()).digest(), 0
        for b in blocks:
            clean = {k: v for k, v in b.items() if k != "cache_control"}
            h = hashlib.sha256(h + orjson.dumps(clean, option=orjson.OPT_SORT_KEYS)).digest()
            total += tokens_of(b)
            hashes.append(h)
            cumulative.append(total)
        read_at = -1
        for bp in breakpoints:
            for i in range(bp, max(-1, bp - LOOKBACK), -1):
                if hashes[i] in self.entries:
                    read_at = max(read_at, i)
                    break
        read = cumulative[read_at] if read_at >= 0 else 0
        written = 0
        if breakpoints:
            last_bp = max(breakpoints)
            if last_bp > read_at and cumulative[last_bp] >= self.min_tokens:
                written = cumulative[last_bp] - read
            for bp in breakpoints:
                if cumulative[bp] >= self.min_tokens:
                    self.entries.add(hashes[bp])
        return {"input_tokens": total - read - written, "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read}
