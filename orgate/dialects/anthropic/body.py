"""Edits to an Anthropic request body that keep the client's bytes where they can.

Signed thinking blocks must reach the upstream exactly, and a 150 KB Claude Code body should not be
re-serialized just to change the model id. `splice_model` swaps the top-level model value in the raw
bytes when that is unambiguous, and falls back to a full serialization otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

_WS = b" \t\r\n"


def _value_starts(raw: bytes, value: bytes) -> list[int]:
    """Offsets where a `"model": <value>` pair's value starts.

    Searching for the value (a long, rare needle) is several times faster than searching for `"model"`
    (its first byte, a quote, is everywhere in JSON); each hit is then checked backwards for the key.
    Inside a JSON string a quote is always escaped, so `"model"` followed by a colon is always a key.
    """
    out: list[int] = []
    i = raw.find(value)
    while i >= 0:
        j = i - 1
        while j >= 0 and raw[j] in _WS:
            j -= 1
        if j >= 0 and raw[j] == 58:  # ':'
            j -= 1
            while j >= 0 and raw[j] in _WS:
                j -= 1
            if raw[j - 6 : j + 1] == b'"model"':
                out.append(i)
        i = raw.find(value, i + len(value))
    return out


def splice_parts(raw: bytes, old: str, new: str) -> tuple[bytes | memoryview, ...] | None:
    """`raw` with the top-level `"model": "<old>"` replaced by `<new>`, as parts to send back to back (views
    of `raw` around the new value: nothing copied); None when the position is ambiguous.

    Claude Code bodies contain other "model" keys (a tool schema property), so the key alone is not
    unique; the key followed by the exact model value almost always is. When it is not, the caller
    serializes instead, which is always correct.
    """
    if old == new:
        return (raw,)
    old_json = orjson.dumps(old)
    # The top-level pair exists (the parsed body says so); if the pattern matches exactly once, that is it.
    # An escaped quote inside a string always carries a backslash, so prose cannot match.
    starts = _value_starts(raw, old_json)
    if len(starts) != 1:
        return None
    at = starts[0]
    view = memoryview(raw)
    return (view[:at], orjson.dumps(new), view[at + len(old_json) :])


def splice_model(raw: bytes, old: str, new: str) -> bytes | None:
    """splice_parts as one bytes object (one copy of the body)."""
    parts = splice_parts(raw, old, new)
    if parts is None:
        return None
    return raw if len(parts) == 1 else b"".join(parts)


def with_model(body_of: Callable[[], dict[str, Any]], raw: bytes | None, client_model: str | None,
               model: str, *, parts: bool = False) -> bytes | tuple[bytes | memoryview, ...]:
    """Bytes of the request for `model`: the client's bytes spliced when possible, else serialized
    (`body_of` parses only then). With `parts`, a splice comes back as its parts (splice_parts), for a
    sender that writes them back to back (upstreams/pool.py): a 150 KB body is then never copied."""
    if raw is not None and client_model is not None:
        spliced = splice_parts(raw, client_model, model)
        if spliced is not None:
            if len(spliced) == 1:
                return raw
            return spliced if parts else b"".join(spliced)
    body = dict(body_of())
    body["model"] = model
    return orjson.dumps(body)
