"""Per-key request, token and concurrency limits, counted in this process.

Windows are fixed one-minute buckets. With several instances each counts its own traffic; shared
counters (Redis) are a later step and would slot in behind the same three calls.
"""

from __future__ import annotations

import time
from collections import defaultdict

from orgate.errors import RateLimited
from orgate.governance.keys import KeyRecord


class Limiter:
    def __init__(self) -> None:
        self._window = 0
        self._requests: dict[int, int] = defaultdict(int)
        self._tokens: dict[int, int] = defaultdict(int)
        self._active: dict[int, int] = defaultdict(int)

    def _roll(self) -> float:
        now = time.time()
        window = int(now // 60)
        if window != self._window:
            self._window = window
            self._requests.clear()
            self._tokens.clear()
        return 60 - (now % 60)

    def check(self, key: KeyRecord) -> None:
        if not (key.rpm or key.tpm or key.max_concurrency):
            return
        left = self._roll()
        if key.rpm and self._requests[key.id] >= key.rpm:
            raise RateLimited(f"Rate limit: this key allows {key.rpm} requests per minute.", retry_after=round(left, 1))
        if key.tpm and self._tokens[key.id] >= key.tpm:
            raise RateLimited(f"Rate limit: this key allows {key.tpm} tokens per minute.", retry_after=round(left, 1))
        if key.max_concurrency and self._active[key.id] >= key.max_concurrency:
            raise RateLimited(f"Rate limit: this key allows {key.max_concurrency} concurrent requests.", retry_after=1)
        self._requests[key.id] += 1

    def enter(self, key: KeyRecord) -> None:
        self._active[key.id] += 1

    def leave(self, key: KeyRecord) -> None:
        self._active[key.id] = max(0, self._active[key.id] - 1)

    def add_tokens(self, key: KeyRecord, n: int) -> None:
        if key.tpm:
            self._roll()
            self._tokens[key.id] += n
