"""Who a key belongs to: the rules for giving a key a user and a team (and for moving it).

A key belongs to at most one user and charges one team. A user's key charges one of the user's teams: the
one named, else the user's default team. The admin API and the CLI both check owners here.
"""

from __future__ import annotations

from typing import Any

from orgate.errors import InvalidRequest, NotFound
from orgate.store.accounts_repo import AccountsRepo


async def get_or_404(engine: Any, level: str, ident: int) -> dict[str, Any]:
    row = await AccountsRepo(engine).get(level, ident)
    if row is None:
        raise NotFound(f"{level}: no {level} with id {ident}.", param=level)
    return row


async def owner_fields(engine: Any, fields: dict[str, Any], current: dict[str, Any] | None = None) -> None:
    """Check (and complete) a key's `user_id` / `team_id` in `fields`; `current` is the key being moved."""
    repo = AccountsRepo(engine)
    user_id = fields.get("user_id", current["user_id"] if current else None)
    if "user_id" in fields and fields["user_id"] is not None:
        user = await get_or_404(engine, "user", fields["user_id"])
        if "team_id" not in fields:
            fields["team_id"] = user["default_team_id"]
    if fields.get("team_id") is not None:
        await get_or_404(engine, "team", fields["team_id"])
        if user_id is not None and not await repo.is_member(fields["team_id"], user_id):
            raise InvalidRequest(f"team_id: user {user_id} is not a member of team {fields['team_id']}.",
                                 param="team_id")
