"""The ledger row fitter's inline fast path keeps exactly what the column fitters would produce."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.store.row_bounds import _fitter, row_fitter
from orgate.store.schema import ledger

FIT = row_fitter(ledger)
COLUMNS = {c.name: c for c in ledger.columns if not c.primary_key}


def reference(row: dict[str, Any]) -> dict[str, Any]:
    """The fitter without the fast path: every value through its column's fitting function."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        col = COLUMNS.get(name)
        if col is None:
            continue
        fn = _fitter(col)
        if value is None:
            out[name] = None if col.nullable else fn("" if str(col.type).startswith(("VARCHAR", "TEXT")) else 0)
        else:
            out[name] = fn(value)
    return out


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.text(), st.text(alphabet=st.characters(max_codepoint=127)), st.text(min_size=200, max_size=400),
    st.just("a\x00b"), st.just("\ud800"), st.floats(allow_nan=False), st.lists(st.integers(), max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*COLUMNS, "not_a_column"]), values, max_size=12))
def test_fast_path_equals_the_column_fitters(row: dict[str, Any]) -> None:
    got, want = FIT(row), reference(row)
    assert got == want
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}


def test_a_normal_row_is_kept_as_is() -> None:
    row = {"ts_ms": 1_700_000_000_000, "request_id": "req_01", "model": "claude-sonnet-4-5", "stream": True,
           "input_tokens": 12, "cost_micros": 345, "error_type": None}
    assert FIT(row) == row


def test_odd_values_are_fitted() -> None:
    out = FIT({"model": "x" * 10_000, "input_tokens": 2**80, "request_id": "a\x00b", "stream": 1})
    assert len(out["model"]) == COLUMNS["model"].type.length
    assert out["input_tokens"] == 2**53 - 1
    assert out["request_id"] == "a\ufffdb"
    assert out["stream"] is True
