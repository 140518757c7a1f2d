"""orgate's own API keys: generation, hashing and the admission rules that need no database.

A key is `<prefix><43 url-safe chars>` (256 bits from `secrets`). Only its SHA-256 is stored: a slow
password hash buys nothing for a 256-bit random secret, and SHA-256 keeps verification to microseconds.
The key is shown once, at creation; lists show `prefix` (the first 12 characters) only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from orgate.errors import AuthenticationFailed, NotFound, PermissionDenied

VISIBLE_CHARS = 12
PERIODS = ("none", "daily", "weekly", "monthly")


def generate(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    name: str
    prefix: str
    hash: str
    status: str
    created_ms: int
    expires_ms: int | None
    budget_micros: int | None
    budget_period: str
    allowed_models: frozenset[str] | None
    rpm: int | None
    tpm: int | None
    max_concurrency: int | None

    def check_usable(self, now: int | None = None) -> None:
        """Refuse a key that exists but may not be used; the caller already matched its hash."""
        if self.status == "deleted":
            raise AuthenticationFailed("Invalid API key.")
        if self.status != "active":
            raise PermissionDenied("API key disabled.")
        if self.expires_ms is not None and (now or now_ms()) >= self.expires_ms:
            raise PermissionDenied("API key expired.")

    def check_model(self, public_id: str, requested: str, aliases: tuple[str, ...] = ()) -> None:
        if self.allowed_models is None:
            return
        names = {public_id, requested, *aliases}
        if names.isdisjoint(self.allowed_models):
            raise PermissionDenied(f"API key is not allowed to use model '{requested}'.")

    def may_use(self, public_id: str) -> bool:
        return self.allowed_models is None or public_id in self.allowed_models


def unknown_model(name: str) -> NotFound:
    return NotFound(f"model: '{name}' is not a model this gateway serves. GET /v1/models lists them.")
