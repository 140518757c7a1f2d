"""The key cache (keyauth.KeyAuth) against a real SQLite key store: misses are bounded apart from the keys."""

from __future__ import annotations

import asyncio

from orgate import keyauth
from orgate.keyauth import KeyAuth
from orgate.store.db import make_engine, upgrade
from orgate.store.keys_repo import KeysRepo


def test_a_flood_of_invalid_keys_is_bounded_and_keeps_the_valid_key_cached(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'orgate.db'}"
    upgrade(url)
    monkeypatch.setattr(keyauth, "MAX_MISSES", 50)

    async def go() -> None:
        engine = make_engine(url)
        try:
            repo = KeysRepo(engine)
            key, _ = await repo.create(prefix="og", name="k")
            auth = KeyAuth(repo, ttl_s=60)
            assert (await auth.lookup(key)) is not None
            for i in range(500):  # more distinct bad keys than the miss bound
                assert await auth.lookup(f"og-not-a-key-{i}") is None
                assert len(auth._misses) <= 50
            assert len(auth._cache) == 1  # the valid key was never pushed out
            assert "og-not-a-key-499" not in auth._misses and len(auth._misses) >= 1  # hashes, never the text
        finally:
            await engine.dispose()

    asyncio.run(go())
