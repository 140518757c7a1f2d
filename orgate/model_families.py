"""Model families (`opus`, `sonnet`, `haiku`, ...) read from catalog names; shared by routing and pricing.

The policy that uses them is orgate/routing/families.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orgate.config import ModelEntry

# A family named inside a configured name: `claude-opus-4.8`, `claude-opus-4-8`, `us.anthropic.claude-opus-4-8`.
_FAMILY_IN_NAME = re.compile(r"(?:^|[./])claude-([a-z]+)-\d")
_ONE_M = re.compile(r"\[1m\]$", re.IGNORECASE)


def family_id(family: str) -> str:
    return f"claude-{family}-*"


def strip_1m(name: str) -> str:
    """`claude-opus-4-8[1m]` -> `claude-opus-4-8`: Claude Code's 1M-context marker is not part of the id."""
    return _ONE_M.sub("", name)


def entry_family(mid: str, entry: ModelEntry) -> str | None:
    for name in (mid, entry.upstream or "", *entry.aliases, *(d.model for d in entry.deployments)):
        m = _FAMILY_IN_NAME.search(name)
        if m:
            return m.group(1)
    return None


def members_by_family(models: Mapping[str, object]) -> dict[str, list[str]]:
    """Priced catalog ids per family, in config order."""
    out: dict[str, list[str]] = {}
    for mid, entry in models.items():
        fam = entry_family(mid, entry) if getattr(entry, "price", None) is not None else None  # type: ignore[arg-type]
        if fam:
            out.setdefault(fam, []).append(mid)
    return out
