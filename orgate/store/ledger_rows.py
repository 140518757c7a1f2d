"""A ledger row as the writer queues it: a tuple of the ledger table's columns, in the table's order.

Hundreds to thousands of rows wait in memory between flushes under load (store/writer.py); as dicts of 26
keys they were ~1.8 KB each and every request built two of them (the row, then its fitted copy). A tuple
is ~260 bytes, is built once, is what the driver's executemany takes, and a clean one is queued as it is.
`COLUMNS` is checked against the table at import, so a schema change cannot silently shift a value into
the wrong column.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from orgate.store.row_bounds import values_fitter
from orgate.store.schema import ledger

COLUMNS: tuple[str, ...] = (
    "ts_ms", "request_id", "key_id", "user_id", "team_id", "api", "endpoint", "model", "public_model",
    "provider", "upstream_model", "stream", "status", "error_type", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "cost_micros",
    "cache_savings_micros", "latency_ms", "ttft_ms", "attempts", "attempt_log", "disconnected",
)
if COLUMNS != tuple(c.name for c in ledger.columns if not c.primary_key):
    raise RuntimeError("store/ledger_rows.COLUMNS is out of step with the ledger table")
INDEX = {name: i for i, name in enumerate(COLUMNS)}

LedgerRow = tuple[Any, ...]
fit = values_fitter(ledger, COLUMNS)


def _default(col: sa.Column[Any]) -> Any:
    """The value the database would give a column left out of an INSERT (its server default), or None."""
    d = col.server_default
    if d is None:
        return None
    arg = getattr(d, "arg", None)
    if isinstance(arg, str):
        return int(arg) if isinstance(col.type, sa.Integer) else arg
    return False if isinstance(col.type, sa.Boolean) else None  # sa.false()


DEFAULTS: LedgerRow = tuple(_default(ledger.c[name]) for name in COLUMNS)


def from_mapping(row: dict[str, Any]) -> LedgerRow:
    """A row given by column name (tests, tools); a column left out takes its server default, as it would
    have in an INSERT naming only the given columns."""
    return tuple(row.get(name, d) for name, d in zip(COLUMNS, DEFAULTS, strict=True))


def as_dict(row: LedgerRow) -> dict[str, Any]:
    return dict(zip(COLUMNS, row, strict=True))
