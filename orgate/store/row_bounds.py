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


def _specs(table: sa.Table) -> dict[str, tuple[Any, bool, Any, Any]]:
    """Per column: (its fitting function, nullable, the type a clean value has, its bound)."""
    fits: dict[str, tuple[Any, bool, Any, Any]] = {}
    for c in table.columns:
        if c.primary_key:
            continue
        t = c.type
        kind = bool if isinstance(t, sa.Boolean) else int if isinstance(t, sa.Integer) else \
            str if isinstance(t, sa.String) else None
        bound = next(v for k, v in INT_LIMIT.items() if isinstance(t, k)) if kind is int else \
            (t.length or 2**62) if kind is str else None
        fits[c.name] = (_fitter(c), c.nullable, kind, bound)
    return fits


def _clean(value: Any, kind: Any, bound: Any) -> bool:
    """A value of its column's own type, in range, clean: stored as it is."""
    vt = type(value)
    return vt is kind and (
        (vt is int and -bound <= value <= bound)
        or (vt is str and len(value) <= bound and value.isascii() and "\x00" not in value)
        or vt is bool)


def _fit_one(value: Any, spec: tuple[Any, bool, Any, Any]) -> Any:
    fn, nullable, kind, bound = spec
    if value is None:
        return None if nullable else fn("" if kind is str else 0)
    return value if _clean(value, kind, bound) else fn(value)


def _clean_expr(var: str, nullable: bool, kind: Any, bound: Any) -> str:
    """`_clean` (or None where allowed) for one value, as an inline Python expression."""
    if kind is int:
        test = f"(type({var}) is int and {-bound} <= {var} <= {bound})"
    elif kind is str:
        test = f"(type({var}) is str and len({var}) <= {bound} and {var}.isascii() and '\\x00' not in {var})"
    elif kind is bool:
        test = f"type({var}) is bool"
    else:
        test = "False"
    return f"({var} is None or {test})" if nullable else test


def values_fitter(table: sa.Table, columns: tuple[str, ...]) -> Any:
    """A function fitting a row given as a tuple of `columns`' values (the ledger's queued form). A clean
    row, which is every row a normal request makes, is returned as the same tuple.

    The check is generated as one expression over the unpacked values (as dataclasses generates its
    methods): a loop over 26 (value, spec) pairs cost 5.7 us a row, the generated check ~1 us; the
    result is the same as `_fit_one` on every value (tests/unit/test_row_bounds.py)."""
    specs = _specs(table)
    order = [specs[c] for c in columns]
    names = [f"v{i}" for i in range(len(columns))]
    checks = " and\n            ".join(
        _clean_expr(n, nullable, kind, bound) for n, (_fn, nullable, kind, bound) in zip(names, order, strict=True))
    src = (f"def fit(values):\n    {', '.join(names)}, = values\n"
           f"    if ({checks}):\n        return values\n    return slow(values)\n")

    def slow(values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(_fit_one(v, spec) for v, spec in zip(values, order, strict=True))

    namespace: dict[str, Any] = {"slow": slow}
    exec(compile(src, f"<ledger fitter for {table.name}>", "exec"), namespace)  # noqa: S102 - our own source
    return namespace["fit"]


def row_fitter(table: sa.Table) -> Any:
    """A function fitting a row (dict) to `table`: unknown keys dropped, NULL kept only where allowed. Used
    for rows off the request path (ledger_rejects); the ledger's own rows are tuples (`values_fitter`)."""
    fits = _specs(table)

    def fit(row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in row.items():
            spec = fits.get(name)
            if spec is None:
                continue
            out[name] = _fit_one(value, spec)
        return out

    return fit
