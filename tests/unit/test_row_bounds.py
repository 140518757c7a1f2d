"""The ledger row fitter's inline fast path keeps exactly what the column fitters would produce."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orgate.store import ledger_rows
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


# -- the ledger's queued form: tuples in column order (store/ledger_rows.py) ---------------------------------

@settings(max_examples=400, deadline=None)
@given(st.tuples(*[values for _ in ledger_rows.COLUMNS]))
def test_tuple_fitter_equals_the_column_fitters(row: tuple[Any, ...]) -> None:
    got = ledger_rows.fit(row)
    want = reference(dict(zip(ledger_rows.COLUMNS, row, strict=True)))
    assert ledger_rows.as_dict(got) == want
    assert [type(v) for v in got] == [type(v) for v in want.values()]


def test_a_clean_tuple_is_queued_as_the_same_object() -> None:
    row = ledger_rows.from_mapping({"ts_ms": 1_700_000_000_000, "request_id": "req_01", "key_id": 3, "api": "anthropic",
                                    "model": "claude-sonnet-4-5", "status": 200, "input_tokens": 12})
    assert ledger_rows.fit(row) is row


def test_each_odd_value_alone_is_fitted() -> None:
    """Every column's inline check can fail: one odd value in an otherwise clean row is fitted."""
    clean = ledger_rows.from_mapping({"ts_ms": 1, "request_id": "r", "api": "anthropic", "status": 200})
    odd = {bool: 2, int: 2**80, str: "a\x00b"}
    for i, name in enumerate(ledger_rows.COLUMNS):
        kind = {"BOOLEAN": bool, "VARCHAR": str, "TEXT": str}.get(str(COLUMNS[name].type).split("(")[0], int)
        row = (*clean[:i], odd[kind], *clean[i + 1:])
        got = ledger_rows.fit(row)
        assert got is not row and got[i] == reference({name: odd[kind]})[name], name


def test_a_mapping_takes_the_server_defaults() -> None:
    row = ledger_rows.as_dict(ledger_rows.from_mapping({"request_id": "r"}))
    assert row["endpoint"] == "messages" and row["attempts"] == 1 and row["stream"] is False
    assert row["input_tokens"] == 0 and row["model"] is None
