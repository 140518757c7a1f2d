"""The exact-count bound and the per-body count cache of governance/admission.py."""

from __future__ import annotations

import asyncio

from orgate.governance import budget
from orgate.governance.admission import COUNT_MARGIN_TOKENS, TokenCounts, counted_bound
from orgate.governance.pricing import Rates


def test_counted_bound_is_tighter_than_bytes_and_keeps_a_margin():
    rates = Rates(input=3_000_000, output=15_000_000, cache_write_5m=3_750_000, cache_write_1h=6_000_000,
                  cache_read=300_000)
    raw = b'{"messages":[{"role":"user","content":"' + b"x" * 19_000 + b'"}]}'
    by_bytes = budget.bound(raw, 4096, rates)
    exact = counted_bound(4_750, raw, 4096, rates)
    assert exact.input_micros < by_bytes.input_micros / 3
    assert exact.input_micros >= (4_750 + COUNT_MARGIN_TOKENS) * 3  # never below the count plus margin
    cached = raw.replace(b'"content"', b'"cache_control":{"type":"ephemeral"},"content"')
    assert counted_bound(4_750, cached, 4096, rates).input_micros > exact.input_micros  # cache-write rate


def test_token_counts_ask_once_per_body():
    counts, asked = TokenCounts(size=2), []

    async def count() -> int:
        asked.append(1)
        return 42

    async def main() -> list[int | None]:
        return [await counts.get(b"a", count), await counts.get(b"a", count), await counts.get(b"b", count)]

    assert asyncio.run(main()) == [42, 42, 42] and len(asked) == 2 and counts.calls == 2
