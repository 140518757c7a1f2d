"""The unknown-model policy (routing/families.py) and family/long-prompt pricing, on the shipped catalog."""

from __future__ import annotations

import pytest

from orgate.config import ConfigError, load_settings
from orgate.core.usage import Usage
from orgate.governance import budget
from orgate.governance.pricing import PriceBook
from orgate.routing.catalog import Catalog

CLASSES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")


def _catalog(**env: str) -> Catalog:
    return Catalog(load_settings(env={f"ORGATE_{k.upper()}": v for k, v in env.items()}))


@pytest.mark.parametrize(("name", "family", "upstream"), [
    ("claude-opus-9-1", "opus", "claude-opus-9-1"),
    ("claude-opus-4-8-20261201", "opus", "claude-opus-4-8-20261201"),  # a dated snapshot of a listed model
    ("claude-sonnet-6[1m]", "sonnet", "claude-sonnet-6"),
    ("claude-sonnet-5.7", "sonnet", "claude-sonnet-5-7"),  # dotted like the service's ids; sent with dashes
    ("claude-haiku-6-0[1M]", "haiku", "claude-haiku-6-0"),
])  # fmt: skip
def test_forward_policy_sends_the_id_to_anthropic_under_the_family_id(name, family, upstream):
    route = _catalog().resolve(name)
    assert route is not None and route.public_id == f"claude-{family}-*"
    assert [(t.provider, t.provider_type, t.upstream_model) for t in route.targets] == [
        ("anthropic", "anthropic", upstream)]
    assert route.entry.hidden and route.entry.context_window == 1_000_000  # from the newest member


@pytest.mark.parametrize("name", ["claude-fable-9", "claude-mythos-5", "claude-opus", "claude-opus-latest",
                                  "gpt-9", "my-claude-opus-9", "anthropic/claude-opus-9-1", "claude-3-opus-x"])
def test_unknown_families_and_shapes_stay_unknown(name):
    assert _catalog().resolve(name) is None


def test_listed_ids_and_their_1m_variants_resolve_to_themselves():
    c = _catalog()
    assert c.resolve("claude-opus-5-5").public_id == "claude-opus-5.5"  # Claude Code 2.1.332's default
    assert c.resolve("claude-haiku-5-5").public_id == "claude-haiku-5.5"  # and its small/fast model
    assert c.resolve("claude-opus-4.7[1m]").public_id == "claude-opus-4.7"
    assert c.resolve("claude-opus-5-5[1m]").targets[0].upstream_model == "claude-opus-5-5"


def test_newest_policy_maps_to_the_newest_member():
    c = _catalog(unknown_models__policy="newest")
    assert c.resolve("claude-opus-9-1").public_id == "claude-opus-5.5"
    assert c.resolve("claude-haiku-7").public_id == "claude-haiku-5.5"
    assert c.resolve("claude-sonnet-6").targets[0].upstream_model == "claude-sonnet-5-5"


def test_refuse_policy_and_families_list():
    assert _catalog(unknown_models__policy="refuse").resolve("claude-opus-9-1") is None
    c = _catalog(unknown_models__families='["opus"]')
    assert c.resolve("claude-opus-9-1") is not None and c.resolve("claude-haiku-9") is None


def test_forward_without_an_anthropic_provider_acts_as_newest():
    c = _catalog(unknown_models__provider="nowhere")
    assert c.resolve("claude-opus-9-1").public_id == "claude-opus-5.5"


def test_config_refuses_a_bad_policy_and_a_non_anthropic_forward_provider():
    with pytest.raises(ConfigError, match="unknown_models.policy"):
        _catalog(unknown_models__policy="guess")
    with pytest.raises(ConfigError, match="not an anthropic provider"):
        _catalog(providers__br__type="bedrock", unknown_models__provider="br")


def test_family_id_is_an_allowlist_name_only_under_forward():
    assert _catalog().knows("claude-opus-*") and not _catalog().knows("claude-fable-*")
    assert not _catalog(unknown_models__policy="newest").knows("claude-opus-*")


def test_family_rates_are_at_least_every_members_rates():
    s = load_settings(env={})
    book = PriceBook(s.models)
    for family in ("opus", "sonnet", "haiku"):
        fam = book[f"claude-{family}-*"]
        members = [m for m in s.models if m.startswith(f"claude-{family}-")]
        assert len(members) >= 2
        for m in members:
            assert all(getattr(fam, c) >= getattr(book[m], c) for c in CLASSES), (family, m)
    opus = book["claude-opus-*"]  # Opus 4.5-4.8 and 5 list at $5/$25, above Opus 5.5's $4/$20
    assert (opus.input, opus.output) == (5_000_000, 25_000_000)


def test_haiku_5_5_long_prompt_tier():
    rates = PriceBook(load_settings(env={}).models)["claude-haiku-5.5"]
    short = Usage(input_tokens=90_000, cache_read_tokens=10_000, output_tokens=1_000)  # exactly 100k: base tier
    assert rates.cost_micros(short) == (90_000 * 100_000 + 10_000 * 10_000 + 1_000 * 500_000) // 1_000_000
    long = Usage(input_tokens=90_001, cache_read_tokens=10_000, output_tokens=1_000)
    assert rates.cost_micros(long) == (90_001 * 500_000 + 10_000 * 50_000 + 1_000 * 2_500_000 + 500_000) // 1_000_000
    # The budget's worst case uses the higher tier.
    b = budget.bound(b"x" * 1000, 1000, rates)
    assert b.output_rate == 2_500_000 and b.input_micros == 1000 * 500_000 // 1_000_000
