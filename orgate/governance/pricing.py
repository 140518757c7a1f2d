"""Exact pricing in integer micro-USD.

Prices are configured in USD per million tokens (decimal strings, so "0.30" is exact). Internally a rate
is integer micro-USD per million tokens: $3/MTok = 3_000_000. A request's cost is summed exactly in
pico-USD (tokens x rate) and rounded once, half up, to micro-USD, so no per-class rounding drifts.
Missing cache rates default to Anthropic's multipliers of the input rate (5m 1.25x, 1h 2x, read 0.1x).
A price may have a long-prompt tier (Haiku 5.5 above 100k prompt tokens): a request whose prompt exceeds
the threshold pays the tier's rates on every token, output included, as Anthropic bills it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from orgate.core.usage import Usage
from orgate.model_families import family_id, members_by_family

if TYPE_CHECKING:
    from orgate.config import LongPromptPrice, Price

MICROS_PER_USD = 1_000_000
PER_MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Rates:
    """Integer micro-USD per million tokens for each price class."""

    input: int
    output: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    long_above: int = 0  # prompt tokens above which `long` applies
    long: Rates | None = None
    # `ceiling`, computed once: every budgeted request bounds its cost with it (it cost ~5 us a request).
    _ceiling: Rates | None = field(default=None, init=False, repr=False, compare=False)

    def cost_micros(self, u: Usage) -> int:
        if self.long is not None and u.prompt_tokens > self.long_above:
            return self.long.cost_micros(u)
        pico = (
            u.input_tokens * self.input
            + u.output_tokens * self.output
            + u.cache_write_5m_tokens * self.cache_write_5m
            + u.cache_write_1h_tokens * self.cache_write_1h
            + u.cache_read_tokens * self.cache_read
        )
        return (pico + PER_MILLION // 2) // PER_MILLION

    def cache_savings_micros(self, u: Usage) -> int:
        """What cache reads saved against paying the plain input rate for the same tokens."""
        if self.long is not None and u.prompt_tokens > self.long_above:
            return self.long.cache_savings_micros(u)
        return (u.cache_read_tokens * (self.input - self.cache_read) + PER_MILLION // 2) // PER_MILLION

    @property
    def max_input_rate(self) -> int:
        return max(self.input, self.cache_write_5m, self.cache_write_1h, self.cache_read)

    @property
    def ceiling(self) -> Rates:
        """The highest rate of each class over both tiers: what a worst-case bound must use."""
        c = self._ceiling
        if c is None:
            c = self if self.long is None else _max_rates([self, self.long])
            object.__setattr__(self, "_ceiling", c)
        return c


_CLASSES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


def _max_rates(rates: list[Rates]) -> Rates:
    return Rates(*(max(getattr(r, c) for r in rates) for c in _CLASSES))


def family_rates(members: list[Rates]) -> Rates:
    """Rates for an id priced "at its family's highest rate": per class, the highest of any member, so it
    never costs less than any member would; with a long tier from the lowest threshold of any member."""
    base = _max_rates(members)
    longs = [r for r in members if r.long is not None]
    if not longs:
        return base
    long = _max_rates([base, *(r.long for r in longs if r.long is not None)])
    return Rates(*(getattr(base, c) for c in _CLASSES), long_above=min(r.long_above for r in longs), long=long)


def usd_to_micros(value: float | str | Decimal) -> int:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"'{value}' is not a number") from None
    if d < 0 or not d.is_finite():
        raise ValueError(f"'{value}' must be a non-negative number")
    micros = d * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"'{value}' has more precision than a millionth of a dollar")
    return int(micros)


def parse_price(p: Price | LongPromptPrice) -> Rates:
    inp = usd_to_micros(p.input)

    def opt(v: float | str | None, num: int, den: int) -> int:
        return usd_to_micros(v) if v is not None else inp * num // den

    long = getattr(p, "long_prompt", None)
    if long is not None and long.above_prompt_tokens < 0:
        raise ValueError("long_prompt.above_prompt_tokens must be non-negative")
    return Rates(
        input=inp,
        output=usd_to_micros(p.output),
        cache_write_5m=opt(p.cache_write_5m, 5, 4),
        cache_write_1h=opt(p.cache_write_1h, 2, 1),
        cache_read=opt(p.cache_read, 1, 10),
        long_above=long.above_prompt_tokens if long is not None else 0,
        long=parse_price(long) if long is not None else None,
    )


def format_usd(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    return f"{sign}${micros // MICROS_PER_USD}.{micros % MICROS_PER_USD:06d}"


class PriceBook:
    """Every catalog model's rates, parsed once at startup (config validation already refused unpriced ones),
    plus one entry per model family (`claude-opus-*`) for ids served by the unknown-model policy."""

    def __init__(self, models: dict[str, object]) -> None:
        self._rates = {mid: parse_price(m.price) for mid, m in models.items() if getattr(m, "price", None)}  # type: ignore[attr-defined]
        for fam, mids in members_by_family(models).items():
            self._rates[family_id(fam)] = family_rates([self._rates[m] for m in mids if m in self._rates])

    def __getitem__(self, public_id: str) -> Rates:
        return self._rates[public_id]
