"""`orgate users ...` and `orgate teams ...`: people and teams from the command line.

The same rules as the admin API (server/admin_accounts.py validates both). Changes reach running gateways
within a second: they watch the users and teams tables like the keys table (keyauth.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import orjson

from orgate.governance.keys import PERIODS
from orgate.governance.pricing import format_usd, usd_to_micros

LEVELS = {"users": "user", "teams": "team"}


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "name", None):
        out["name"] = args.name
    if getattr(args, "budget", None) is not None:
        out["budget_micros"] = None if args.budget in ("", "none") else usd_to_micros(args.budget)
    if getattr(args, "period", None):
        out["budget_period"] = args.period
    if getattr(args, "models", None) is not None:
        out["allowed_models"] = [m.strip() for m in args.models.split(",") if m.strip()] or None
    for f in ("rpm", "tpm", "email", "external_id"):
        if getattr(args, f, None) is not None:
            out[f] = getattr(args, f)
    return out


async def find(engine: Any, level: str, ident: str) -> dict[str, Any]:
    from orgate.store.accounts_repo import AccountsRepo

    row = await AccountsRepo(engine).find(level, ident)
    if row is None:
        raise SystemExit(f"no single {level} matches '{ident}' (use the id, the name{' or email' if level == 'user' else ''})")
    return row


def _line(r: dict[str, Any]) -> str:
    b = format_usd(r["budget_micros"]) if r["budget_micros"] is not None else "-"
    return f"{r['id']:>4}  {r['status']:9} {b:>14} {format_usd(r['spent_micros']):>14}  {r['name']}"


async def run(ctx: tuple[Any, Any, argparse.Namespace]) -> int:
    from orgate.errors import GatewayError
    from orgate.store.accounts_repo import AccountsRepo

    _, engine, args = ctx
    level, repo = LEVELS[args.cmd], AccountsRepo(engine)
    try:
        return await _act(engine, repo, level, args)
    except GatewayError as e:
        print(e.message, file=sys.stderr)
        return 1


async def _act(engine: Any, repo: Any, level: str, args: argparse.Namespace) -> int:
    fields = _fields(args)
    if getattr(args, "team", None):
        fields["default_team_id"] = (await find(engine, "team", args.team))["id"]
    if args.action == "create":
        row = await repo.create(level, **fields)
        print(orjson.dumps(row).decode() if args.json else f"created {level} {row['id']} '{row['name']}'")
        return 0
    if args.action == "list":
        rows, total = await repo.list(level, limit=1000)
        if args.json:
            print(orjson.dumps(rows).decode())
            return 0
        print(f"{'id':>4}  {'status':9} {'budget':>14} {'spent':>14}  name")
        for r in rows:
            print(_line(r))
        print(f"{total} {level}s")
        return 0
    row = await find(engine, level, args.ident)
    if args.action in ("disable", "enable"):
        await repo.update(level, row["id"], status="disabled" if args.action == "disable" else "active")
        print(f"{level} {row['id']} '{row['name']}' is now {'disabled' if args.action == 'disable' else 'active'}")
    elif args.action == "update":
        await repo.update(level, row["id"], **fields)
        print(f"{level} {row['id']} updated")
    elif args.action in ("add-member", "remove-member"):
        user = await find(engine, "user", args.user)
        if args.action == "add-member":
            await repo.add_member(row["id"], user["id"])
        else:
            await repo.remove_member(row["id"], user["id"])
        print(f"user {user['id']} {'added to' if args.action == 'add-member' else 'removed from'} team {row['id']}")
    elif args.action == "show":
        out: dict[str, Any] = {level: row, "keys": await repo.keys_of(level, row["id"])}
        out["members" if level == "team" else "teams"] = (
            await repo.members(row["id"]) if level == "team" else await repo.teams_of(row["id"]))
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


def _options(p: argparse.ArgumentParser, level: str) -> None:
    p.add_argument("--budget", help="budget in USD, e.g. 2000 or 0.50 ('none' removes it)")
    p.add_argument("--period", choices=PERIODS, help="budget reset period (calendar-aligned, UTC)")
    p.add_argument("--models", help="comma-separated allowed models (empty: all)")
    p.add_argument("--rpm", type=int)
    p.add_argument("--tpm", type=int)
    if level == "user":
        p.add_argument("--email")
        p.add_argument("--external-id", dest="external_id", help="the identity provider's subject (SSO)")
        p.add_argument("--team", help="default team (id or name): the user joins it; their keys charge it")


def add_parsers(sub: Any, runner: Callable[[Callable[..., Any], argparse.Namespace], int]) -> None:
    for cmd, level in LEVELS.items():
        p = sub.add_parser(cmd, help=f"manage {cmd}: budgets, model access, status")
        s = p.add_subparsers(dest="action", required=True)
        c = s.add_parser("create")
        c.add_argument("--name", required=True)
        c.add_argument("--json", action="store_true")
        _options(c, level)
        s.add_parser("list").add_argument("--json", action="store_true")
        for action in ("show", "disable", "enable"):
            s.add_parser(action).add_argument("ident", help=f"{level} id or name")
        u = s.add_parser("update")
        u.add_argument("ident")
        u.add_argument("--name")
        _options(u, level)
        if level == "team":
            for action in ("add-member", "remove-member"):
                m = s.add_parser(action)
                m.add_argument("ident", help="team id or name")
                m.add_argument("user", help="user id, name or email")
        for child in s.choices.values():
            child.set_defaults(func=lambda a: runner(run, a))
