"""Claude's signed thinking blocks carried through a Responses `reasoning` item's `encrypted_content`.

Codex sends its history back statelessly (`store:false`), so the thinking blocks of turn N must survive
the round trip to be replayed byte-identical in turn N+1. The token is

    "orgate.v1." + base64url(nonce[12] || AES-256-GCM(key, nonce, json(blocks), aad="orgate.v1|" + key_id))

The key is derived from the server secret (HKDF-SHA256), so the token is private and authenticated;
binding `key_id` as associated data means a token minted for one API key opens only for that key and
cannot be replayed into another key's conversation. `open` never raises: foreign values (OpenAI's own
encrypted reasoning, another gateway's, a tampered or truncated token) yield None and are dropped.
A compaction summary (compaction.py) is sealed the same way under its own associated-data prefix, so a
summary token never opens as thinking blocks and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

import orjson

PREFIX = "orgate.v1."
_AAD_PREFIX = b"orgate.v1|"
_SUMMARY_AAD_PREFIX = b"orgate.v1.compaction|"
_NONCE = 12
_BLOCK_TYPES = frozenset({"thinking", "redacted_thinking"})


class ReasoningEnvelope:
    __slots__ = ("_secret", "_cipher")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the reasoning envelope secret must be at least 32 bytes")
        self._secret = secret
        self._cipher: Any = None

    @property
    def _aead(self) -> Any:
        """AES-GCM under the HKDF-derived key, built at first use: `cryptography` (its OpenSSL library, ~6 MB
        resident) is then loaded only by a gateway whose clients use the Responses API's reasoning items."""
        if self._cipher is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"orgate reasoning envelope v1")
            self._cipher = AESGCM(hkdf.derive(self._secret))
        return self._cipher

    def seal(self, blocks: list[dict[str, Any]], *, key_id: str) -> str:
        """Thinking / redacted_thinking blocks -> opaque token bound to `key_id`."""
        return self._seal(orjson.dumps(blocks), _AAD_PREFIX + key_id.encode())

    def open(self, token: str, *, key_id: str) -> list[dict[str, Any]] | None:
        """The original blocks, or None when the token is not ours, tampered or sealed for another key."""
        plain = self._open(token, _AAD_PREFIX + key_id.encode())
        try:
            blocks = orjson.loads(plain) if plain is not None else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(blocks, list) or not all(
            isinstance(b, dict) and b.get("type") in _BLOCK_TYPES for b in blocks
        ):
            return None
        return blocks

    def seal_text(self, text: str, *, key_id: str) -> str:
        """A compaction summary -> opaque token bound to `key_id`."""
        return self._seal(text.encode(), _SUMMARY_AAD_PREFIX + key_id.encode())

    def open_text(self, token: str, *, key_id: str) -> str | None:
        plain = self._open(token, _SUMMARY_AAD_PREFIX + key_id.encode())
        try:
            return plain.decode() if plain is not None else None
        except UnicodeDecodeError:
            return None

    def _seal(self, plain: bytes, aad: bytes) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, plain, aad)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def _open(self, token: Any, aad: bytes) -> bytes | None:
        if not isinstance(token, str) or not token.startswith(PREFIX):
            return None
        body = token[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= _NONCE + 16:
            return None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
            return None  # only the canonical encoding is ours: no two tokens for one sealed value
        aead = self._aead
        from cryptography.exceptions import InvalidTag

        try:
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad)
        except InvalidTag:
            return None
