"""Model ids the catalog does not list but whose family it knows: the `unknown_models` policy.

Claude clients change their default model with new releases (Claude Code 2.1.330 sent `claude-opus-5-5`,
which the catalog of the day did not know: every user's first request was a 404). An id of a configured
family (`unknown_models.families`, default opus, sonnet, haiku: `claude-<family>-<digit>...`, with or without
a date; a trailing `[1m]` is stripped before any lookup) follows `unknown_models.policy`:

- `forward` (default): sent as given (dots written as dashes) to `unknown_models.provider`, an anthropic-type
  provider, and billed at the family's highest configured rate of each price class, so it never costs less
  than any listed member would (pricing.family_rates). Context window, output limit and thinking types are
  those of the family's newest member. The ledger's `public_model` is `claude-<family>-*`; a key restricted
  to a list of models must list `claude-<family>-*` to use such ids. An id the provider does not know
  gets the provider's own 404. Without that provider configured, `forward` acts as `newest`.
- `newest`: served and billed as the family's newest configured member (by `created_at`).
- `refuse`: a 404 like any unknown id.

An id of any other family (`claude-fable-9`, `gpt-9`) is a 404 whatever the policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

from orgate.core.target import Target
from orgate.model_families import family_id, members_by_family

if TYPE_CHECKING:
    from orgate.config import Settings
    from orgate.routing.catalog import ModelRoute

# A requested id this policy may serve: nothing before `claude-`, a version digit right after the family.
_REQUESTED = re.compile(r"^claude-([a-z]+)-(\d[0-9a-z.\-]*)$")
_CACHE_LIMIT = 1024  # distinct unknown ids remembered; a flood of random ids only costs a recompute

class FamilyPolicy:
    """Resolves a requested id of a known family per `unknown_models`; built once by the catalog."""

    def __init__(self, settings: Settings, routes: Mapping[str, ModelRoute]) -> None:
        cfg = settings.unknown_models
        self._policy = cfg.policy
        provider = settings.providers.get(cfg.provider)
        self._forward_to = cfg.provider if provider is not None and provider.type == "anthropic" else None
        self._newest: dict[str, ModelRoute] = {}
        for fam, mids in members_by_family(settings.models).items():
            members = [routes[m] for m in mids if m in routes and fam in cfg.families]
            if members:  # max() keeps the first of equal dates: config order breaks ties
                self._newest[fam] = max(members, key=lambda r: r.entry.created_at)
        self._cache: dict[str, ModelRoute | None] = {}

    def serves(self, family_public_id: str) -> bool:
        """True for `claude-<family>-*` when `forward` serves that family under that public id."""
        return self._policy == "forward" and self._forward_to is not None and any(
            family_public_id == family_id(f) for f in self._newest)

    def resolve(self, name: str) -> ModelRoute | None:
        if self._policy == "refuse":
            return None
        if name not in self._cache:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def _resolve(self, name: str) -> ModelRoute | None:
        m = _REQUESTED.match(name)
        newest = self._newest.get(m.group(1)) if m else None
        if newest is None:
            return None
        if self._policy == "newest" or self._forward_to is None:
            return newest
        return self._forwarded(name.replace(".", "-"), m.group(1), newest)  # type: ignore[union-attr]

    def _forwarded(self, upstream: str, family: str, newest: ModelRoute) -> ModelRoute:
        from orgate.routing.catalog import ModelRoute  # local: catalog imports this module

        assert self._forward_to is not None
        entry = msgspec.structs.replace(
            newest.entry, upstream=upstream, deployments=[], aliases=[], provider_ids={}, hidden=True,
            display_name=f"{upstream} (not in the catalog; billed at the {family} family's highest rate)")
        return ModelRoute(family_id(family), entry, (Target(self._forward_to, "anthropic", upstream),))
