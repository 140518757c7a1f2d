from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orgate.config import Price
from orgate.core.usage import Usage
from orgate.dialects.anthropic.usage import merge_usage, usage_from
from orgate.governance.budget import bound
from orgate.governance.pricing import format_usd, parse_price, usd_to_micros

SONNET = parse_price(Price(input="3", output="15", cache_write_5m="3.75", cache_write_1h="6", cache_read="0.30"))


def test_cost_is_exact_by_class():
    u = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=20000, cache_write_5m_tokens=1000,
              cache_write_1h_tokens=2000)
    # 1000*3 + 500*15 + 20000*0.30 + 1000*3.75 + 2000*6 micro-USD
    assert SONNET.cost_micros(u) == 3000 + 7500 + 6000 + 3750 + 12000
    assert SONNET.cache_savings_micros(u) == 20000 * 3 - 6000


def test_rounding_once_half_up():
    # 7 cache-read tokens at $0.30/MTok = 2.1 micro-USD -> 2; 5 at 0.30 = 1.5 -> 2
    assert SONNET.cost_micros(Usage(cache_read_tokens=7)) == 2
    assert SONNET.cost_micros(Usage(cache_read_tokens=5)) == 2


def test_default_cache_multipliers_and_validation():
    r = parse_price(Price(input="0.80", output="4"))
    assert (r.cache_write_5m, r.cache_write_1h, r.cache_read) == (1_000_000, 1_600_000, 80_000)
    with pytest.raises(ValueError):
        usd_to_micros("0.0000001")
    with pytest.raises(ValueError):
        usd_to_micros("-1")
    assert format_usd(1_234_567) == "$1.234567"


def test_usage_split_survives_delta_without_split():
    u = usage_from({"input_tokens": 5, "cache_creation_input_tokens": 300,
                              "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200}})
    merge_usage(u, {"output_tokens": 9, "cache_creation_input_tokens": 300})
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens, u.output_tokens) == (100, 200, 9)


@given(st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**7), st.integers(0, 10**6),
       st.integers(0, 10**6))
def test_cost_matches_decimal_arithmetic(i, o, cr, c5, c1):
    from decimal import ROUND_HALF_UP, Decimal

    u = Usage(i, o, cr, c5, c1)
    exact = (Decimal(i) * 3 + Decimal(o) * 15 + Decimal(cr) * Decimal("0.3") + Decimal(c5) * Decimal("3.75")
             + Decimal(c1) * 6)
    assert SONNET.cost_micros(u) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_bound_covers_and_lowers_max_tokens():
    raw = b'{"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"' + b"x" * 1000 + b'"}]}'
    b = bound(raw, 1000, SONNET)
    assert b.input_micros == len(raw) * 3 and b.total == len(raw) * 3 + 15_000
    assert b.fit_max_tokens(b.total) == 1000
    assert b.fit_max_tokens(b.input_micros + 300 * 15) == 300
    assert b.fit_max_tokens(b.input_micros + 10 * 15) is None  # too little left to be useful
    cached = bound(raw.replace(b'"x', b'"cache_control":{"ttl":"1h"},"x'), 1000, SONNET)
    assert cached.input_micros > b.input_micros  # priced at the 1h cache-write rate
