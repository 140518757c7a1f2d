"""orgate's own API keys: generation, hashing and the admission rules that need no database.

A key is `<prefix><43 url-safe chars>` (256 bits from `secrets`). Only its SHA-256 is stored: a slow
password hash buys nothing for a 256-bit random secret, and SHA-256 keeps verification to microseconds.
The key is shown once, at creation; lists show `prefix` (the first 12 characters) only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from orgate.errors import AuthenticationFailed, BudgetExhausted, NotFound, PermissionDenied

VISIBLE_CHARS = 12
PERIODS = ("none", "daily", "weekly", "monthly")


def generate(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Account:
    """A user or a team as admission sees it: the rules it adds above its keys."""

    level: str  # "user" | "team"
    id: int
    name: str
    status: str
    budget_micros: int | None
    budget_period: str
    allowed_models: frozenset[str] | None
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    name: str
    prefix: str
    hash: str
    status: str
    created_ms: int
    expires_ms: int | None
    budget_micros: int | None
    budget_period: str
    allowed_models: frozenset[str] | None
    rpm: int | None
    tpm: int | None
    max_concurrency: int | None
    user: Account | None = None
    team: Account | None = None
    # Derived once per cached record, not per request: the key and whatever stands above it, in lock order
    # (key, user, team); those of them with a budget; and the (level, id) every settlement charges.
    levels: tuple[KeyRecord | Account, ...] = field(init=False, repr=False, compare=False)
    capped: tuple[KeyRecord | Account, ...] = field(init=False, repr=False, compare=False)
    refs: tuple[tuple[str, int], ...] = field(init=False, repr=False, compare=False)
    rate_limited: tuple[KeyRecord | Account, ...] = field(init=False, repr=False, compare=False)
    level: str = field(default="key", init=False, repr=False)

    def __post_init__(self) -> None:
        levels = tuple(x for x in (self, self.user, self.team) if x is not None)
        object.__setattr__(self, "levels", levels)
        object.__setattr__(self, "capped", tuple(x for x in levels if x.budget_micros is not None))
        object.__setattr__(self, "refs", tuple((x.level, x.id) for x in levels))
        object.__setattr__(self, "rate_limited", tuple(
            x for x in levels if x.rpm or x.tpm or (x is self and self.max_concurrency)))

    def check_usable(self, now: int | None = None) -> None:
        """Refuse a key that exists but may not be used; the caller already matched its hash."""
        if self.status == "deleted":
            raise AuthenticationFailed("Invalid API key.")
        if self.status != "active":
            raise PermissionDenied("API key disabled.")
        if self.expires_ms is not None and (now or now_ms()) >= self.expires_ms:
            raise PermissionDenied("API key expired.")
        for acct in (self.user, self.team):
            if acct is not None and acct.status != "active":
                # the same answer a disabled key gets: the holder cannot fix it by retrying
                raise PermissionDenied(f"API key's {acct.level} '{acct.name}' is disabled.")

    def check_model(self, public_id: str, requested: str, aliases: tuple[str, ...] = ()) -> None:
        """Model access is the intersection of the key's, the user's and the team's allowlists."""
        names = {public_id, requested, *aliases}
        for x in self.levels:
            if x.allowed_models is not None and names.isdisjoint(x.allowed_models):
                who = "API key" if x is self else f"API key's {x.level} '{x.name}'"
                raise PermissionDenied(f"{who} is not allowed to use model '{requested}'.")

    def may_use(self, public_id: str) -> bool:
        return all(x.allowed_models is None or public_id in x.allowed_models for x in self.levels)


def unknown_model(name: str) -> NotFound:
    return NotFound(f"model: '{name}' is not a model this gateway serves. GET /v1/models lists them.")


def budget_exhausted(key: KeyRecord, level: str) -> BudgetExhausted:
    """The refusal names the level whose remaining budget cannot cover the request."""
    if level == "key":
        who = "this API key"
    else:
        acct = key.user if level == "user" else key.team
        who = f"the {level} '{acct.name if acct else '?'}' this API key belongs to"
    err = BudgetExhausted(
        f"Budget exhausted for {who} ({level} budget): its remaining budget cannot cover this request. "
        "Contact your administrator to increase the budget."
    )
    err.level = level
    return err
