"""Managed settings pushed to Claude Code: a global default merged with the person's team's settings, served
in the envelope Claude Code requires (`{uuid, checksum, settings}`; a bare document fails its session).

The checksum, and so the ETag, is the SHA-256 of the sorted-key compact JSON of `settings`: Claude Code
computes its own If-None-Match exactly that way, so any other canonical form would never match (304).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GLOBAL = ""


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The team's settings over the global default: objects merge key by key (so `env` is a shallow merge of
    variables), deny-lists accumulate (a team cannot lift a global ban), every other value is replaced."""
    out = dict(base)
    for k, v in over.items():
        old = out.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            out[k] = merge(old, v)
        elif isinstance(v, list) and isinstance(old, list) and "deny" in k.lower():
            out[k] = old + [x for x in v if x not in old]
        else:
            out[k] = v
    return out


def canonical(settings: dict[str, Any]) -> bytes:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def envelope(scope_settings: dict[str, dict[str, Any]], team: str) -> dict[str, Any] | None:
    """The envelope for a person in `team`, or None when no policy applies (answered 404, not `{}`)."""
    if GLOBAL not in scope_settings and team not in scope_settings:
        return None
    settings = merge(scope_settings.get(GLOBAL, {}), scope_settings.get(team, {}))
    checksum = "sha256:" + hashlib.sha256(canonical(settings)).hexdigest()
    policy = "sha256:" + hashlib.sha256(f"orgate-policy|{team}".encode()).hexdigest()
    return {"uuid": policy, "checksum": checksum, "settings": settings}


def etag(env: dict[str, Any]) -> str:
    return f'"{env["checksum"]}"'


def not_modified(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    sent = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return tag in sent or "*" in sent
