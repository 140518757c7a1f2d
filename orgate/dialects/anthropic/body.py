"""Edits to an Anthropic request body that keep the client's bytes where they can.

Signed thinking blocks must reach the upstream exactly, and a 150 KB Claude Code body should not be
re-serialized just to change the model id. `splice_model` swaps the top-level model value in the raw
bytes when that is unambiguous, and falls back to a full serialization otherwise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import orjson


@functools.lru_cache(maxsize=256)
def _model_pattern(old_json: bytes) -> re.Pattern[bytes]:
    """Compiled once per model name: compiling per request showed up at 6% of a stream's CPU."""
    return re.compile(rb'"model"\s*:\s*' + re.escape(old_json))


def splice_model(raw: bytes, old: str, new: str) -> bytes | None:
    """Replace the top-level `"model": "<old>"` with `<new>`; None when the position is ambiguous.

    Claude Code bodies contain other "model" keys (a tool schema property), so the key alone is not
    unique; the key followed by the exact model value almost always is. When it is not, the caller
    serializes instead, which is always correct.
    """
    if old == new:
        return raw
    old_json = orjson.dumps(old)
    # The top-level pair exists (the parsed body says so); if the pattern matches exactly once, that is it.
    # An escaped quote inside a string always carries a backslash, so prose cannot match.
    matches = _model_pattern(old_json).finditer(raw)
    first = next(matches, None)
    if first is None or next(matches, None) is not None:
        return None
    return raw[: first.end() - len(old_json)] + orjson.dumps(new) + raw[first.end() :]


def with_model(body_of: Callable[[], dict[str, Any]], raw: bytes | None, client_model: str | None,
               model: str) -> bytes:
    """Bytes of the request for `model`: the client's bytes spliced when possible, else serialized
    (`body_of` parses only then)."""
    if raw is not None and client_model is not None:
        spliced = splice_model(raw, client_model, model)
        if spliced is not None:
            return spliced
    body = dict(body_of())
    body["model"] = model
    return orjson.dumps(body)
