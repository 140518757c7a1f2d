"""Model names as clients send them, resolved to priced models and deployments."""

from __future__ import annotations

import pytest

from orgate.config import load_settings
from orgate.routing.catalog import Catalog
from orgate.upstreams.thinking import strip_thinking

ENV = {"ORGATE_PROVIDERS__BR__TYPE": "bedrock", "ORGATE_PROVIDERS__BR2__TYPE": "bedrock",
       "ORGATE_PROVIDERS__VX__TYPE": "vertex"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(load_settings(env=ENV))


@pytest.mark.parametrize(("name", "public", "ptype", "upstream"), [
    ("aws/anthropic/us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4.5", "bedrock",
     "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("aws/anthropic/eu.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4.5", "bedrock",
     "eu.anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("aws/anthropic/global.anthropic.claude-opus-4-5-20251101-v1:0", "claude-opus-4.5", "bedrock",
     "global.anthropic.claude-opus-4-5-20251101-v1:0"),
    ("global.anthropic.claude-sonnet-4-6", "claude-sonnet-4.6", "bedrock", "global.anthropic.claude-sonnet-4-6"),
    ("aws/anthropic/claude-sonnet-4.5", "claude-sonnet-4.5", "bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("google/anthropic/claude-sonnet-4-5", "claude-sonnet-4.5", "vertex", "claude-sonnet-4-5@20250929"),
    ("google/anthropic/claude-haiku-4-5@20251001", "claude-haiku-4.5", "vertex", "claude-haiku-4-5@20251001"),
    ("anthropic/claude-sonnet-4-5-20250929", "claude-sonnet-4.5", "anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic/claude-opus-4.5", "claude-opus-4.5", "anthropic", "claude-opus-4-5-20251101"),
])  # fmt: skip
def test_prefixed_names(catalog, name, public, ptype, upstream):
    route = catalog.resolve(name)
    assert route is not None and route.public_id == public
    assert {t.provider_type for t in route.targets} == {ptype}
    assert {t.upstream_model for t in route.targets} == {upstream}


def test_prefix_addresses_every_provider_of_its_type(catalog):
    route = catalog.resolve("aws/anthropic/claude-haiku-4.5")
    assert [t.provider for t in route.targets] == ["br", "br2"]


def test_unknown_names_are_refused(catalog):
    assert catalog.resolve("aws/anthropic/us.anthropic.claude-nonexistent-v1:0") is None
    assert catalog.resolve("openai/gpt-4o") is None  # no price configured, no openai provider


def test_distinct_unknown_prefixed_names_do_not_grow_memory_without_bound():
    """Model names are the client's: each distinct `aws/...` id must not stay in memory for good."""
    from orgate.routing.catalog import PREFIXED_CACHE_LIMIT

    c = Catalog(load_settings(env=ENV))
    for i in range(3 * PREFIXED_CACHE_LIMIT):
        assert c.resolve(f"aws/anthropic/us.anthropic.claude-made-up-{i}-v1:0") is None
    assert len(c._prefixed_cache) <= PREFIXED_CACHE_LIMIT
    assert c.resolve("aws/anthropic/claude-haiku-4.5") is not None  # still served after the cache is dropped


def test_strip_thinking_keeps_tool_loop_valid():
    body = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "a", "signature": "s"},
                                          {"type": "text", "text": "a1"}]},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "b", "signature": "s2"},
                                          {"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}]}
    out = strip_thinking(body)
    assert "thinking" not in out  # the turn in progress lost its thinking block: thinking off for this call
    assert out["messages"][3]["content"] == [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]
    assert body["messages"][1]["content"][0]["type"] == "thinking"  # input not mutated
    earlier_only = {**body, "messages": body["messages"][:3]}
    assert strip_thinking(earlier_only)["thinking"] == body["thinking"]
