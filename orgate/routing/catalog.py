"""Model names to deployments, computed once at startup so a request resolves with one dict lookup.

Accepted names, as clients send them:
- a public id or alias from the catalog (`claude-sonnet-4.5`, `claude-sonnet-4-5`);
- the upstream id of a catalog model (`claude-sonnet-4-5-20250929`), billed as that model;
- a provider-prefixed id as in the router's docs: `anthropic/<model>`, `aws/anthropic/<model>` (Bedrock),
  `google/anthropic/<model>` (Vertex), `openai/<model>`, or `<configured provider name>/<model>`, where
  `<model>` is any of the above or a provider-specific id from the catalog's `provider_ids`.
A name that maps to no priced model is refused: nothing is ever served unpriced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orgate.config import Deployment, ModelEntry, Settings
from orgate.governance.pricing import Rates, parse_price

# Prefixes of the router's docs, and the provider type each one addresses.
PREFIX_TYPES: dict[str, str] = {
    "anthropic": "anthropic",
    "aws/anthropic": "bedrock",
    "aws": "bedrock",
    "bedrock": "bedrock",
    "google/anthropic": "vertex",
    "google": "vertex",
    "vertex": "vertex",
    "vertex_ai": "vertex",
    "openai": "openai",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One deployment ready to call."""

    provider: str  # the provider's name in config
    provider_type: str
    upstream_model: str
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class ModelRoute:
    public_id: str
    entry: ModelEntry
    rates: Rates
    targets: tuple[Target, ...]
    requested_prefix: str | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def default_max_tokens(self) -> int:
        return self.entry.default_max_tokens


class Catalog:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._routes: dict[str, ModelRoute] = {}
        self._by_name: dict[str, ModelRoute] = {}
        self._prefixed_cache: dict[str, ModelRoute | None] = {}
        for mid, entry in settings.models.items():
            if entry.price is None:
                continue  # config validation already refused this
            deps = entry.deployments or [Deployment(settings.default_provider, entry.upstream or mid)]
            targets = tuple(
                Target(d.provider, settings.providers[d.provider].type, d.model, d.weight)
                for d in deps
                if d.provider in settings.providers
            )
            route = ModelRoute(mid, entry, parse_price(entry.price), targets, aliases=tuple(entry.aliases))
            self._routes[mid] = route
            names = [mid, *entry.aliases, *(d.model for d in deps), *entry.provider_ids.values()]
            if entry.upstream:
                names.append(entry.upstream)
            for n in names:
                # Public ids and aliases win over upstream ids when two entries share a name.
                self._by_name.setdefault(n, route)
        for mid, route in self._routes.items():
            self._by_name[mid] = route

    def routes(self) -> list[ModelRoute]:
        return [r for r in self._routes.values() if not r.entry.hidden]

    def resolve(self, name: str) -> ModelRoute | None:
        route = self._by_name.get(name)
        if route is not None:
            return route
        if "/" not in name:
            return None
        if name not in self._prefixed_cache:
            self._prefixed_cache[name] = self._resolve_prefixed(name)
        return self._prefixed_cache[name]

    def _provider_for(self, prefix: str) -> tuple[str, str] | None:
        providers = self._settings.providers
        if prefix in providers:
            return prefix, providers[prefix].type
        ptype = PREFIX_TYPES.get(prefix)
        if ptype is None:
            return None
        for name, p in providers.items():
            if p.type == ptype:
                return name, ptype
        return None

    def _resolve_prefixed(self, name: str) -> ModelRoute | None:
        # Longest prefix first: `aws/anthropic/x` before `aws/x`.
        parts = name.split("/")
        for cut in range(min(2, len(parts) - 1), 0, -1):
            prefix, rest = "/".join(parts[:cut]), "/".join(parts[cut:])
            found = self._provider_for(prefix)
            if found is None:
                continue
            provider, ptype = found
            base = self._by_name.get(rest)
            if base is None:
                return None
            upstream = base.entry.provider_ids.get(ptype)
            if upstream is None:
                # The caller named the model in this provider's own terms, or it is the first-party id.
                upstream = rest if rest not in self._routes else (base.entry.upstream or rest)
                if ptype == "anthropic" and rest in base.entry.provider_ids.values():
                    upstream = base.entry.upstream or rest
            return ModelRoute(
                base.public_id,
                base.entry,
                base.rates,
                (Target(provider, ptype, upstream),),
                requested_prefix=prefix,
                aliases=base.aliases,
            )
        return None
