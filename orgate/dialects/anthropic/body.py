"""Edits to an Anthropic request body that keep the client's bytes where they can.

Signed thinking blocks must reach the upstream exactly, and a 150 KB Claude Code body should not be
re-serialized just to change the model id. `splice_model` swaps the top-level model value in the raw
bytes when that is unambiguous, and falls back to a full serialization otherwise.
"""

from __future__ import annotations

from typing import Any

import orjson


def splice_model(raw: bytes, old: str, new: str) -> bytes | None:
    """Replace the top-level `"model": "<old>"` with `<new>`; None when the position is ambiguous."""
    if old == new:
        return raw
    if raw.count(b'"model"') != 1:
        return None  # a nested "model" key exists (e.g. inside a tool schema): can't tell which is top-level
    key = raw.find(b'"model"')
    colon = raw.find(b":", key + 7)
    if colon < 0 or raw[key + 7 : colon].strip():
        return None
    old_json = orjson.dumps(old)
    start = colon + 1
    while start < len(raw) and raw[start] in b" \t\r\n":
        start += 1
    if raw[start : start + len(old_json)] != old_json:
        return None
    return raw[:start] + orjson.dumps(new) + raw[start + len(old_json) :]


def with_model(call_body: dict[str, Any], raw: bytes | None, client_model: str | None, model: str) -> bytes:
    """Bytes of the request for `model`: the client's bytes spliced when possible, else serialized."""
    if raw is not None and client_model is not None:
        spliced = splice_model(raw, client_model, model)
        if spliced is not None:
            return spliced
    body = dict(call_body)
    body["model"] = model
    return orjson.dumps(body)
