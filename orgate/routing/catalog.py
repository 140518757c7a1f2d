"""Model names to deployments, computed once at startup so a request resolves with one dict lookup.

Accepted names, as clients send them:
- a public id or alias from the catalog (`claude-sonnet-4.5`, `claude-sonnet-4-5`);
- the upstream id of a catalog model (`claude-sonnet-4-5-20250929`), billed as that model;
- a provider-prefixed id as in the router's docs: `anthropic/<model>`, `aws/anthropic/<model>` (Bedrock),
  `google/anthropic/<model>` (Vertex), `openai/<model>`, or `<configured provider name>/<model>`, where
  `<model>` is any of the above or a provider-specific id from the catalog's `provider_ids`.
Bedrock cross-region inference profiles (`us.`, `eu.`, `apac.`, `global.`, … before `anthropic.`) are priced
as the catalog model their base id names (the geography is stripped for the lookup only) and sent upstream
unchanged; a bare profile id without `aws/anthropic/` is taken to mean Bedrock. A prefix addresses every
configured provider of its type, in config order, so two Bedrock regions back each other up.
A trailing `[1m]` (Claude Code's 1M-context marker) is stripped before any lookup. An unlisted id of a
known family (`claude-opus-5-5`) follows the `unknown_models` policy (routing/families.py).
A name that maps to no priced model is refused: nothing is ever served unpriced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from orgate.config import Deployment, ModelEntry, Settings
from orgate.core.target import Target
from orgate.model_families import strip_1m
from orgate.routing.families import FamilyPolicy

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
# Provider-prefixed ids remembered (routes and misses): the names are the client's, so a client sending
# endless distinct `aws/...` ids must cost a recompute, not a dict that grows for the life of the process.
PREFIXED_CACHE_LIMIT = 1024
# A Bedrock cross-region inference profile: the geography before `anthropic.`.
GEO_PREFIX = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.(?=anthropic\.)")


@dataclass(frozen=True, slots=True)
class ModelRoute:
    public_id: str
    entry: ModelEntry
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
        tiers: tuple[list[tuple[str, ModelRoute]], ...] = ([], [])
        for mid, entry in settings.models.items():
            if entry.price is None:
                continue  # config validation already refused this
            deps = entry.deployments or [Deployment(settings.default_provider, entry.upstream or mid)]
            targets = tuple(
                Target(d.provider, settings.providers[d.provider].type, d.model, d.weight)
                for d in deps
                if d.provider in settings.providers
            )
            route = ModelRoute(mid, entry, targets, aliases=tuple(entry.aliases))
            self._routes[mid] = route
            # Names a model is known by upstream, then the ids its deployments happen to use: an alias whose
            # deployment is `us.anthropic.claude-…` must not capture the catalog model of that id.
            tiers[0].extend((n, route) for n in [*entry.aliases, *entry.provider_ids.values(), entry.upstream or mid])
            tiers[1].extend((d.model, route) for d in deps)
        for tier in tiers:
            for n, route in tier:
                self._by_name.setdefault(n, route)
        for mid, route in self._routes.items():
            self._by_name[mid] = route  # public ids win over every other name
        self._families = FamilyPolicy(settings, self._routes)

    def routes(self) -> list[ModelRoute]:
        return [r for r in self._routes.values() if not r.entry.hidden]

    def knows(self, name: str) -> bool:
        """A name a key's allowlist may hold: anything resolve() serves, or a family id (`claude-opus-*`)."""
        return self.resolve(name) is not None or self._families.serves(name)

    def resolve(self, name: str) -> ModelRoute | None:
        route = self._by_name.get(name)
        if route is not None:
            return route
        if name.endswith("]") and strip_1m(name) != name:
            return self.resolve(strip_1m(name))
        if "/" not in name:
            if not GEO_PREFIX.match(name):
                return self._families.resolve(name)
            name = "aws/anthropic/" + name  # a bare inference profile id is a Bedrock id
        if name not in self._prefixed_cache:
            if len(self._prefixed_cache) >= PREFIXED_CACHE_LIMIT:
                self._prefixed_cache.clear()
            self._prefixed_cache[name] = self._resolve_prefixed(name)
        return self._prefixed_cache[name]

    def _providers_for(self, prefix: str) -> tuple[list[str], str] | None:
        providers = self._settings.providers
        if prefix in providers:
            return [prefix], providers[prefix].type
        ptype = PREFIX_TYPES.get(prefix)
        if ptype is None:
            return None
        names = [name for name, p in providers.items() if p.type == ptype]
        return (names, ptype) if names else None

    def _resolve_prefixed(self, name: str) -> ModelRoute | None:
        # Longest prefix first: `aws/anthropic/x` before `aws/x`.
        parts = name.split("/")
        for cut in range(min(2, len(parts) - 1), 0, -1):
            prefix, rest = "/".join(parts[:cut]), "/".join(parts[cut:])
            found = self._providers_for(prefix)
            if found is None:
                continue
            names, ptype = found
            base = self._by_name.get(GEO_PREFIX.sub("", rest)) or self._by_name.get(rest)
            if base is None:
                return None
            upstream = self._upstream_id(base, rest, ptype)
            return ModelRoute(
                base.public_id,
                base.entry,
                tuple(Target(n, ptype, upstream) for n in names),
                requested_prefix=prefix,
                aliases=base.aliases,
            )
        return None

    @staticmethod
    def _upstream_id(base: ModelRoute, rest: str, ptype: str) -> str:
        """The id to send: the caller's own provider-specific id unchanged, else the catalog's id for ptype."""
        e = base.entry
        public = {base.public_id, *e.aliases}
        if ptype == "anthropic":
            if rest in public or rest in e.provider_ids.values():
                return e.upstream or rest
            return rest
        if ptype == "bedrock" and (GEO_PREFIX.match(rest) or rest.startswith(("anthropic.", "arn:"))):
            return rest  # a base id or an inference profile the operator chose: passed through as given
        if ptype == "vertex" and "@" in rest:
            return rest
        if rest in public or rest == e.upstream:
            return e.provider_ids.get(ptype) or e.upstream or rest
        return rest
