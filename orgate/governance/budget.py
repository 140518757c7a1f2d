"""Budget policy: what a request may cost at most, and how to make it fit what is left.

The guarantee (see README, "Budgets"): a key's recorded spend never exceeds its budget. Admission reserves
an upper bound of the request's cost atomically (store/budget_repo.py); settlement swaps the reservation
for the actual cost. The upper bound:

- input: every token of the prompt covers at least one byte of the request JSON, so the body's byte
  length bounds the text tokens; each image or document adds a fixed allowance (an image costs at most
  about 1,600 tokens after Anthropic's resize; a PDF page about 3,000), all priced at the most expensive
  input class the request can incur (1-hour cache write if it asks for one, else 5-minute write if it
  uses cache_control, else plain input);
- output: `max_tokens` at the output rate.

Far from the limit this bound is simply reserved. Near it, `fit_max_tokens` lowers `max_tokens` so the
worst case fits the remainder; only a request whose input alone cannot fit is refused.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from orgate.governance.pricing import PER_MILLION, Rates

IMAGE_TOKENS = 1_600
DOCUMENT_TOKENS = 100_000  # a PDF's page count is unknown until parsed: bound a document generously
MIN_OUTPUT_TOKENS = 256  # below this a lowered max_tokens would only produce truncated answers


class CostBound(NamedTuple):  # made on every request: a NamedTuple (see governance/leases.py, Cap)
    input_micros: int
    output_rate: int  # micro-USD per million output tokens
    max_tokens: int

    @property
    def total(self) -> int:
        return self.input_micros + _ceil_div(self.max_tokens * self.output_rate, PER_MILLION)

    def fit_max_tokens(self, remaining_micros: int) -> int | None:
        """The largest max_tokens whose worst case fits `remaining_micros`, or None when nothing useful fits."""
        left = remaining_micros - self.input_micros
        if left <= 0:
            return None
        tokens = left * PER_MILLION // self.output_rate if self.output_rate else self.max_tokens
        tokens = min(tokens, self.max_tokens)
        return tokens if tokens >= min(MIN_OUTPUT_TOKENS, self.max_tokens) else None


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def input_rate_for(raw: bytes, rates: Rates) -> int:
    if b'"cache_control"' not in raw:
        return rates.input
    if b'"1h"' in raw:
        return max(rates.cache_write_1h, rates.input)
    return max(rates.cache_write_5m, rates.input)


def bound(raw: bytes, max_tokens: int, rates: Rates) -> CostBound:
    rates = rates.ceiling  # a long-prompt tier may apply: bound with the higher rate of each class
    tokens = len(raw) + raw.count(b'"image"') * IMAGE_TOKENS + raw.count(b'"document"') * DOCUMENT_TOKENS
    return CostBound(_ceil_div(tokens * input_rate_for(raw, rates), PER_MILLION), rates.output, max_tokens)


_STARTS: dict[tuple[str, int], int] = {}


def period_start(period: str, now: datetime | None = None) -> int:
    """Start (ms since epoch, UTC, calendar-aligned) of the budget period containing `now`; 0 for none.

    Every request asks this for each capped level (key, user, team): today's answers are remembered."""
    if period == "none":
        return 0
    if now is None:
        t = time.time()
        today = int(t // 86_400)
        hit = _STARTS.get((period, today))
        if hit is None:
            if len(_STARTS) > 64:
                _STARTS.clear()
            hit = _STARTS[(period, today)] = _period_start(period, datetime.fromtimestamp(t, UTC))
        return hit
    return _period_start(period, now)


def _period_start(period: str, now: datetime) -> int:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start = day
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    elif period == "monthly":
        start = day.replace(day=1)
    else:
        raise ValueError(f"unknown budget period '{period}'")
    return calendar.timegm(start.timetuple()) * 1000
