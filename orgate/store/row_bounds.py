"""Make a ledger row storable on every database before it is queued, from the column types themselves.

Ledger values come from callers and upstreams (a model name, an error type): a value PostgreSQL cannot store
(longer than its VARCHAR, a NUL character, an unpaired surrogate, an integer past BIGINT, a non-string) would
fail the whole batch it travels in. Each value is fitted to its column instead: strings are made text,
cleaned and truncated, integers are clamped, so one hostile request can never stop metering for everyone.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

# Integers past 2**53 lose precision in the console's JavaScript, and 2**10 of them still sum inside BIGINT.
INT_LIMIT = {sa.BigInteger: 2**53 - 1, sa.Integer: 2**31 - 1}


def _text(value: Any, length: int | None) -> str:
    if not isinstance(value, str):
        try:
            value = orjson.dumps(value).decode()
        except TypeError:
            value = repr(value)
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL
    try:
        value.encode()
    except UnicodeEncodeError:  # an unpaired surrogate from a JSON escape
        value = value.encode("utf-8", "replace").decode()
    return value[:length] if length is not None else value


def _integer(value: Any, limit: int) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(-limit, min(limit, n))


def _fitter(col: sa.Column[Any]) -> Any:
    t = col.type
    if isinstance(t, sa.Boolean):
        return bool
    if isinstance(t, sa.Integer):
        limit = next(v for k, v in INT_LIMIT.items() if isinstance(t, k))
        return lambda v: _integer(v, limit)
    if isinstance(t, sa.String):  # Text is a String without a length
        return lambda v: _text(v, t.length)
    return lambda v: v


def row_fitter(table: sa.Table) -> Any:
    """A function fitting a row (dict) to `table`: unknown keys dropped, NULL kept only where allowed.

    It runs for every request (store/writer.py queues fitted rows), so the values a normal request carries
    (an int in range, a short clean ASCII string, a bool) are checked inline and kept as they are; only an
    odd value goes through the fitting functions above.
    """
    fits: dict[str, tuple[Any, bool, Any, int | None]] = {}
    for c in table.columns:
        if c.primary_key:
            continue
        t = c.type
        kind = bool if isinstance(t, sa.Boolean) else int if isinstance(t, sa.Integer) else \
            str if isinstance(t, sa.String) else None
        bound = next(v for k, v in INT_LIMIT.items() if isinstance(t, k)) if kind is int else \
            (t.length or 2**62) if kind is str else None
        fits[c.name] = (_fitter(c), c.nullable, kind, bound)

    def fit(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in row.items():
            spec = fits.get(name)
            if spec is None:
                continue
            fn, nullable, kind, bound = spec
            if value is None:
                out[name] = None if nullable else fn("" if kind is str else 0)
                continue
            vt = type(value)
            if vt is kind and (
                    (vt is int and -bound <= value <= bound)  # type: ignore[operator]
                    or (vt is str and len(value) <= bound and value.isascii() and "\x00" not in value)  # type: ignore[operator]
                    or vt is bool):
                out[name] = value
            else:
                out[name] = fn(value)
        return out

    return fit
