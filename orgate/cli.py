"""orgate's command line: serve, keys, users, teams, usage, config check, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from orgate.config import ConfigError, Settings, load_settings
from orgate.config_check import notices
from orgate.governance.keys import PERIODS
from orgate.governance.pricing import format_usd, usd_to_micros


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args.config)
    except ConfigError as e:
        print(f"config error:\n{e}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from orgate.server.app import create_app
    from orgate.server.drain import MARGIN
    from orgate.server.guard import guarded_protocol, read_limits
    from orgate.server.workers import resolve_workers, serve_workers

    s = _settings(args)
    host = args.host or s.server.host
    port = args.port or s.server.port
    try:
        workers = resolve_workers(args.workers if args.workers is not None else s.server.workers)
    except ValueError as e:
        print(f"config error:\n{e}", file=sys.stderr)
        return 2
    # ws="none": a WebSocket upgrade (Codex on /v1/responses) reaches the app as a plain GET it answers 426.
    options: dict[str, Any] = dict(
        loop="uvloop", http=guarded_protocol(read_limits(s.server)), ws="none", lifespan="on",
        log_level=s.server.log_level, access_log=False, proxy_headers=False,
        # the app ends streams still open at the grace (server/drain.py); uvicorn's timeout is the backstop
        timeout_graceful_shutdown=s.server.shutdown_grace_seconds + MARGIN, timeout_keep_alive=75)
    if workers > 1:
        return serve_workers(s, host, port, workers, args.config, options)
    app = create_app(s)
    print(f"orgate listening on http://{host}:{port} (database: {s.db_url.split('@')[-1]})", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, **options)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    s = _settings(args)
    print(f"config ok: {len(s.models)} models, {len(s.providers)} providers, database {s.db_url.split('@')[-1]}")
    for line in notices(s):
        print(f"warning: {line}")
    missing = _missing_extras(s)
    for line in missing:
        print(f"error: {line}", file=sys.stderr)
    return (2 if missing else 0) or _explain_fields(s, args)


def _explain_fields(s: Settings, args: argparse.Namespace) -> int:
    """Each asked-for field's effective value and where it came from; secrets only say whether they are set."""
    import os

    import msgspec

    from orgate.config import CATALOG_PATH, _read_yaml, config_path
    from orgate.config_env import env_overrides, explain, lookup

    env = dict(os.environ)
    overrides, _, unused = env_overrides(env, Settings)
    for var in unused:
        if var != "ORGATE_CONFIG":
            print(f"note: {var} names no setting, so it is not an override (it can still be a ${{{var}}} reference)")
    file = config_path(args.config, env)
    layers = [("catalog", _read_yaml(CATALOG_PATH))] + ([(f"file {file}", _read_yaml(file))] if file else [])
    effective = msgspec.to_builtins(s)
    status = 0
    for dotted in getattr(args, "fields", []):
        found, value = lookup(effective, tuple(dotted.split(".")))
        if not found:
            print(f"error: {dotted} is not a setting", file=sys.stderr)
            status = 2
            continue
        print(explain(dotted, value, overrides, layers))
    return status


def _missing_extras(s: Settings) -> list[str]:
    """Providers whose configuration needs an optional dependency that is not installed."""
    import importlib.util

    from orgate.upstreams.sigv4 import AWS_EXTRA_HINT, AwsAuth

    out = []
    for name, p in s.providers.items():
        if p.type == "bedrock" and AwsAuth(p, p.region or "us-east-1").needs_chain and importlib.util.find_spec("botocore") is None:
            out.append(f"providers.{name}: no bearer_token or access key in config or environment, and {AWS_EXTRA_HINT}")
    return out


def _run(fn: Callable[[Any], Awaitable[int]], args: argparse.Namespace) -> int:
    from orgate.store.db import make_engine, upgrade

    s = _settings(args)
    upgrade(s.db_url)

    async def main() -> int:
        engine = make_engine(s.db_url)
        try:
            return await fn((s, engine, args))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _key_fields(args: argparse.Namespace) -> dict[str, Any]:
    from orgate.governance.keys import now_ms

    out: dict[str, Any] = {}
    if getattr(args, "budget", None) is not None:
        out["budget_micros"] = usd_to_micros(args.budget)
    if getattr(args, "period", None):
        out["budget_period"] = args.period
    if getattr(args, "models", None):
        out["allowed_models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for f in ("rpm", "tpm", "max_concurrency"):
        if getattr(args, f, None) is not None:
            out[f] = getattr(args, f)
    if getattr(args, "expires_days", None) is not None:
        out["expires_ms"] = now_ms() + int(args.expires_days * 86_400_000)
    return out


async def _keys(ctx: tuple[Settings, Any, argparse.Namespace]) -> int:
    from orgate.store.keys_repo import KeysRepo

    s, engine, args = ctx
    repo = KeysRepo(engine)
    if args.action == "create":
        fields = await _owner(engine, args, _key_fields(args))
        key, row = await repo.create(prefix=s.keys.prefix, name=args.name, **fields)
        if args.json:
            print(orjson.dumps({"key": key, **{str(k): v for k, v in row.items()}}).decode())
        else:
            print(f"created key {row['id']} '{row['name']}' ({row['prefix']}...)")
            print(f"budget: {format_usd(row['budget_micros']) if row['budget_micros'] is not None else 'none'}")
            print("this key is shown once; store it now:")
            print(key)
        return 0
    if args.action == "list":
        rows, total = await repo.list(limit=1000)
        if args.json:
            print(orjson.dumps([{str(k): v for k, v in r.items()} for r in rows]).decode())
            return 0
        print(f"{'id':>4}  {'prefix':14} {'status':9} {'budget':>14} {'spent':>14}  name")
        for r in rows:
            b = format_usd(r["budget_micros"]) if r["budget_micros"] is not None else "-"
            print(f"{r['id']:>4}  {r['prefix']:14} {r['status']:9} {b:>14} {format_usd(r['spent_micros']):>14}  {r['name']}")
        print(f"{total} keys")
        return 0
    row = await repo.find(args.key)
    if row is None:
        print(f"no single key matches '{args.key}' (use the id, the visible prefix or a unique name)", file=sys.stderr)
        return 1
    if args.action in ("disable", "enable", "delete"):
        status = {"disable": "disabled", "enable": "active", "delete": "deleted"}[args.action]
        await repo.update(row["id"], status=status)
        print(f"key {row['id']} ({row['prefix']}...) is now {status}")
    elif args.action == "update":
        await repo.update(row["id"], **await _owner(engine, args, _key_fields(args), row))
        print(f"key {row['id']} updated")
    elif args.action == "rotate":
        rotated = await repo.rotate(row["id"], s.keys.prefix)
        assert rotated is not None
        print(f"key {row['id']} rotated; the old secret no longer works. New key (shown once):")
        print(rotated[0])
    return 0


async def _owner(engine: Any, args: argparse.Namespace, fields: dict[str, Any],
                 current: dict[str, Any] | None = None) -> dict[str, Any]:
    """--user / --team: the key's owner (moving it when updating), checked like the admin API does."""
    from orgate.cli_accounts import find
    from orgate.errors import GatewayError
    from orgate.governance.owners import owner_fields

    for level in ("user", "team"):
        if getattr(args, level, None):
            fields[f"{level}_id"] = (await find(engine, level, getattr(args, level)))["id"]
    try:
        await owner_fields(engine, fields, current)
    except GatewayError as e:
        raise SystemExit(e.message) from None
    return fields


async def _usage(ctx: tuple[Settings, Any, argparse.Namespace]) -> int:
    from orgate.governance.keys import now_ms
    from orgate.store.keys_repo import KeysRepo
    from orgate.store.ledger_repo import DAY_MS, LedgerRepo

    s, engine, args = ctx
    key_id = None
    if args.key:
        row = await KeysRepo(engine).find(args.key)
        if row is None:
            print(f"no single key matches '{args.key}'", file=sys.stderr)
            return 1
        key_id = row["id"]
    ledger = LedgerRepo(engine)
    since = now_ms() - args.days * DAY_MS
    out = {"totals": await ledger.summary(key_id, since), "by_model": await ledger.by_group("public_model", key_id, since),
           "by_day": await ledger.by_day(key_id, since)}
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from orgate.store.db import upgrade

    s = _settings(args)
    upgrade(s.db_url)
    print(f"database at head: {s.db_url.split('@')[-1]}")
    return 0


def _add_key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", help="budget in USD, e.g. 25 or 0.50")
    p.add_argument("--period", choices=PERIODS, help="budget reset period (calendar-aligned, UTC)")
    p.add_argument("--models", help="comma-separated allowed models (default: all)")
    p.add_argument("--rpm", type=int)
    p.add_argument("--tpm", type=int)
    p.add_argument("--max-concurrency", dest="max_concurrency", type=int)
    p.add_argument("--expires-days", dest="expires_days", type=float)
    p.add_argument("--user", help="the user the key belongs to (id, name or email)")
    p.add_argument("--team", help="the team the key charges (default: the user's default team)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="orgate", description="orgate AI gateway")
    ap.add_argument("--config", "-c", help="YAML config file (default: $ORGATE_CONFIG or ./orgate.yaml)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("serve", help="start the gateway")
    sp.add_argument("--host")
    sp.add_argument("--port", type=int)
    sp.add_argument("--workers", help="processes serving the port: a number or 'auto' (cores); default server.workers")
    sp.set_defaults(func=cmd_serve)

    cp = sub.add_parser("config", help="configuration")
    csub = cp.add_subparsers(dest="config_cmd", required=True)
    cc = csub.add_parser("check", help="validate the config and say exactly what is wrong")
    cc.add_argument("fields", nargs="*", help="settings to show with their source, e.g. server.port admin.password")
    cc.set_defaults(func=cmd_config_check)

    dp = sub.add_parser("db", help="database")
    dsub = dp.add_subparsers(dest="db_cmd", required=True)
    dsub.add_parser("upgrade", help="run migrations to the latest schema").set_defaults(func=cmd_db_upgrade)

    kp = sub.add_parser("keys", help="manage API keys")
    ksub = kp.add_subparsers(dest="action", required=True)
    kc = ksub.add_parser("create", help="create a key (shown once)")
    kc.add_argument("--name", required=True)
    kc.add_argument("--json", action="store_true")
    _add_key_options(kc)
    kl = ksub.add_parser("list", help="list keys (visible prefixes only)")
    kl.add_argument("--json", action="store_true")
    for action in ("disable", "enable", "delete", "rotate"):
        ksub.add_parser(action).add_argument("key", help="key id, visible prefix or unique name")
    ku = ksub.add_parser("update", help="change budget, period, limits, models")
    ku.add_argument("key")
    _add_key_options(ku)
    for p in ksub.choices.values():
        p.set_defaults(func=lambda a: _run(_keys, a))

    from orgate import cli_accounts

    cli_accounts.add_parsers(sub, _run)

    up = sub.add_parser("usage", help="usage summary from the ledger (JSON)")
    up.add_argument("--key")
    up.add_argument("--days", type=int, default=30)
    up.set_defaults(func=lambda a: _run(_usage, a))
    _config_everywhere(ap)
    return ap


def _config_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept `--config` after any subcommand too (`orgate serve --config x.yaml`); SUPPRESS keeps a value
    given before the subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if not any("--config" in a.option_strings for a in child._actions):
                    child.add_argument("--config", "-c", default=argparse.SUPPRESS, help="YAML config file")
                _config_everywhere(child)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
