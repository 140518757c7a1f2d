from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from orgate.dialects.anthropic.body import splice_model, with_model

CLAUDE_CODE_LIKE = orjson.dumps({
    "model": "claude-opus-4-8",
    "tools": [{"name": "Agent", "input_schema": {"properties": {"model": {"type": "string", "enum": ["sonnet"]}}}}],
    "messages": [{"role": "user", "content": 'say "model":"claude-opus-4-8" please'}],
    "max_tokens": 32000,
})


def test_claude_code_body_is_spliced_not_reserialized():
    out = splice_model(CLAUDE_CODE_LIKE, "claude-opus-4-8", "claude-opus-4-8-up")
    assert out is not None and len(out) == len(CLAUDE_CODE_LIKE) + 3
    body = orjson.loads(out)
    assert body["model"] == "claude-opus-4-8-up"
    assert body["messages"][0]["content"] == 'say "model":"claude-opus-4-8" please'  # prose untouched


def test_ambiguous_bodies_fall_back_to_serialization():
    raw = orjson.dumps({"model": "m", "metadata": {"model": "m"}})
    assert splice_model(raw, "m", "u") is None
    assert orjson.loads(with_model(lambda: {"model": "m", "metadata": {"model": "m"}}, raw, "m", "u")) == {
        "model": "u", "metadata": {"model": "m"}}


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["model", "a", "b"]), c, max_size=3),
                           max_leaves=10)


@given(st.dictionaries(st.sampled_from(["a", "b", "tools", "metadata"]), json_values, max_size=4), st.text(max_size=10))
def test_splice_is_exactly_a_model_change(extra, model):
    body = {**extra, "model": model}
    raw = orjson.dumps(body)
    out = with_model(lambda: body, raw, model, "upstream-id")
    assert orjson.loads(out) == {**body, "model": "upstream-id"}


def test_parts_are_views_of_the_client_bytes_and_join_to_the_splice():
    from orgate.dialects.anthropic.body import splice_parts

    parts = with_model(lambda: {}, CLAUDE_CODE_LIKE, "claude-opus-4-8", "claude-opus-4-8-up", parts=True)
    assert isinstance(parts, tuple) and len(parts) == 3
    assert isinstance(parts[0], memoryview) and parts[0].obj is CLAUDE_CODE_LIKE  # no copy of the body
    assert b"".join(parts) == splice_model(CLAUDE_CODE_LIKE, "claude-opus-4-8", "claude-opus-4-8-up")
    assert splice_parts(CLAUDE_CODE_LIKE, "claude-opus-4-8", "claude-opus-4-8") == (CLAUDE_CODE_LIKE,)
    assert with_model(lambda: {}, CLAUDE_CODE_LIKE, "claude-opus-4-8", "claude-opus-4-8", parts=True) is CLAUDE_CODE_LIKE
