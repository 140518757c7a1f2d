"""Authenticating orgate keys with no database round trip on the hot path.

A verified key's record is cached by its SHA-256 for `keys.cache_ttl_seconds`. Changes made in this
process (disable, update, rotate, delete) drop the cache at once; changes made elsewhere (the CLI, another
instance) are seen within a second: a background poll watches `max(updated_ms)` of the keys, users and
teams tables and drops the cache when one moves (a cached key carries its user's and team's status,
budget and allowlist, so disabling a user or team cuts its keys as fast as disabling a key). Unknown keys
are cached as misses for a few seconds so that a flood of bad keys cannot turn into a flood of queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from orgate.errors import AuthenticationFailed
from orgate.governance.keys import KeyRecord, hash_key, same_hash
from orgate.store.keys_repo import KeysRepo

MISS_TTL_S = 5.0
MAX_KEYS = 100_000  # cached records (a cache this size is cleared, not evicted entry by entry)
MAX_MISSES = 10_000
POLL_S = 1.0


def extract_key(headers: dict[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


class KeyAuth:
    def __init__(self, repo: KeysRepo, ttl_s: float) -> None:
        self.repo = repo
        self.ttl = ttl_s
        self._cache: dict[str, tuple[KeyRecord, float]] = {}  # found keys only; misses are in _misses
        self._misses: dict[str, float] = {}  # hash -> until when it is known not to be a key
        self._seen_change: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    async def authenticate(self, headers: dict[str, str]) -> KeyRecord:
        key = extract_key(headers)
        if not key:
            raise AuthenticationFailed("Missing API key: send it in the x-api-key header or as Authorization: Bearer.")
        record = await self.lookup(key)
        if record is None:
            raise AuthenticationFailed("Invalid API key.")
        record.check_usable()
        return record

    async def lookup(self, key: str) -> KeyRecord | None:
        h = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(h)
        if hit is not None and hit[1] > now:
            return hit[0]
        missed = self._misses.get(h)
        if missed is not None and missed > now:
            return None
        # The database matches on the hash (unique index); comparing hashes of a 256-bit secret leaks
        # nothing useful through timing, and the lookup never touches the plaintext.
        record = await self.repo.by_hash(h)
        if record is not None and not same_hash(record.hash, h):
            record = None  # the index matched; the final comparison is constant-time all the same
        if record is None:
            # Misses apart, in a smaller map: a flood of distinct invalid keys (each ~300 bytes here) is
            # bounded at ~3 MB and never pushes the valid keys out of their cache.
            if len(self._misses) >= MAX_MISSES:
                self._misses.clear()
            self._misses[h] = now + MISS_TTL_S
            return None
        if len(self._cache) >= MAX_KEYS:
            self._cache.clear()
        self._cache[h] = (record, now + self.ttl)
        return record

    def invalidate(self) -> None:
        self._cache.clear()
        self._misses.clear()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            with contextlib.suppress(Exception):
                change = await self.repo.last_change()
                if change != self._seen_change:
                    self._seen_change = change
                    self.invalidate()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
