"""Exact pricing in integer micro-USD.

Prices are configured in USD per million tokens (decimal strings, so "0.30" is exact). Internally a rate
is integer micro-USD per million tokens: $3/MTok = 3_000_000. A request's cost is summed exactly in
pico-USD (tokens x rate) and rounded once, half up, to micro-USD, so no per-class rounding drifts.
Missing cache rates default to Anthropic's multipliers of the input rate (5m 1.25x, 1h 2x, read 0.1x).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from orgate.core.usage import Usage

if TYPE_CHECKING:
    from orgate.config import Price

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

    def cost_micros(self, u: Usage) -> int:
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
        return (u.cache_read_tokens * (self.input - self.cache_read) + PER_MILLION // 2) // PER_MILLION

    @property
    def max_input_rate(self) -> int:
        return max(self.input, self.cache_write_5m, self.cache_write_1h, self.cache_read)


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


def parse_price(p: Price) -> Rates:
    inp = usd_to_micros(p.input)

    def opt(v: float | str | None, num: int, den: int) -> int:
        return usd_to_micros(v) if v is not None else inp * num // den

    return Rates(
        input=inp,
        output=usd_to_micros(p.output),
        cache_write_5m=opt(p.cache_write_5m, 5, 4),
        cache_write_1h=opt(p.cache_write_1h, 2, 1),
        cache_read=opt(p.cache_read, 1, 10),
    )


def format_usd(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    return f"{sign}${micros // MICROS_PER_USD}.{micros % MICROS_PER_USD:06d}"


class PriceBook:
    """Every catalog model's rates, parsed once at startup (config validation already refused unpriced ones)."""

    def __init__(self, models: dict[str, object]) -> None:
        self._rates = {mid: parse_price(m.price) for mid, m in models.items() if getattr(m, "price", None)}  # type: ignore[attr-defined]

    def __getitem__(self, public_id: str) -> Rates:
        return self._rates[public_id]
