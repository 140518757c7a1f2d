"""Duplicate keys at the top level of a JSON object, found without decoding the values.

JSON leaves duplicates undefined: orjson and msgspec keep the last, another parser may keep the first. On the
fast path the client's bytes go upstream as sent, so `{"model": "opus", "model": "haiku"}` could be allowed
and billed as one model and served as the other. The gateway decides on top-level fields only (model,
max_tokens, stream, fallbacks, metadata), so those are the ones that must be unambiguous.

How: decode the top level with every value kept as raw bytes (msgspec.Raw: a dict, so a duplicate collapses
into one entry) and encode it back. Outside its values, the re-encoded object holds only the keys, colons and
commas of the distinct keys, with no whitespace; the client's bytes hold the same plus whitespace, unless a
key repeats (another `"key": value` pair) or a key is spelled with needless escapes. So the two have the same
number of non-whitespace bytes exactly when no key repeats (a needlessly escaped key also counts as repeated,
which only ever refuses an odd body, never admits an ambiguous one). Compact JSON (JSON.stringify, most
clients) is settled by lengths alone; other bodies cost two C-level passes.
"""

from __future__ import annotations

import msgspec

DUPLICATE_KEYS = ("Request body repeats a top-level key (or spells one with needless escapes): "
                  "each key may appear once.")
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ENC = msgspec.json.Encoder()


def _solid(b: bytes) -> int:
    """Bytes that are not JSON whitespace."""
    return len(b.translate(None, b" \n\r\t"))


def has_duplicate_keys(raw: bytes) -> bool:
    """True when the top-level JSON object in `raw` repeats a key. Invalid JSON or a non-object: False (the
    caller's own parser reports those)."""
    try:
        top = _TOP.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    compact = 1 + sum(len(_ENC.encode(k)) + 2 + len(v) for k, v in top.items()) + (0 if top else 1)
    if compact == len(raw):
        return False  # compact and every pair accounted for
    return _solid(_ENC.encode(top)) != _solid(raw)
