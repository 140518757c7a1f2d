"""Environment overrides `ORGATE_<SECTION>__<FIELD>=value`, typed by the field they set.

Each variable's name is resolved against the Settings types (msgspec's type info): a struct level must
name one of its fields, a dict level takes any key (`ORGATE_PROVIDERS__MYPROV__API_KEY`). A variable whose
name reaches no field (`ORGATE_ADMIN_PASSWORD`, `ORGATE_CONFIG`, a typo) is not an override: it stays an
ordinary environment variable, usable in `${...}` references, and `orgate config check` lists it.

The value is then read as the field's type, never as YAML: a string field takes the value verbatim (digits,
`#`, `~`, `null`, `*`, `!`, surrounding spaces: secrets are opaque); int, float and bool fields are parsed and
a bad value is an error naming the variable without echoing the value (it may be a secret); list, dict and
struct fields take JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

ENV_PREFIX = "ORGATE_"
REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")  # `${NAME}` / `${NAME:-default}` in the files
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Override:
    var: str  # the environment variable's name
    path: tuple[str, ...]  # the setting it sets, e.g. ("server", "port")
    value: Any


def _field_type(t: mi.Type, part: str) -> mi.Type | None:
    """The type one level below `t` for the name part `part`, or None when `part` names nothing there."""
    if isinstance(t, mi.StructType):
        for f in t.fields:
            if f.name == part:
                return f.type
        return None
    if isinstance(t, mi.DictType):
        return t.value_type
    return None


def _resolve(root: mi.Type, parts: list[str]) -> mi.Type | None:
    t: mi.Type | None = root
    for part in parts:
        t = _field_type(_without_none(t), part) if t is not None and part else None
        if t is None:
            return None
    return t


def _without_none(t: mi.Type) -> mi.Type:
    if isinstance(t, mi.UnionType):
        rest = [u for u in t.types if not isinstance(u, mi.NoneType)]
        if len(rest) == 1:
            return rest[0]
    return t


def _parse(var: str, raw: str, t: mi.Type) -> Any:
    """`raw` read as type `t`; ValueError names `var` and the expected type, never the value."""
    members = list(t.types) if isinstance(t, mi.UnionType) else [t]
    kinds = [type(m) for m in members if not isinstance(m, mi.NoneType)]
    if mi.StrType in kinds:
        return raw  # a string (or string-or-number, like prices): verbatim
    if len(kinds) == 1 and kinds[0] is mi.BoolType:
        word = raw.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ValueError(f"{var}: expected a boolean (true/false, 1/0, yes/no, on/off)")
    if kinds and all(k in (mi.IntType, mi.FloatType) for k in kinds):
        try:
            return int(raw.strip()) if kinds == [mi.IntType] else float(raw.strip())
        except ValueError:
            expected = "an integer" if kinds == [mi.IntType] else "a number"
            raise ValueError(f"{var}: expected {expected}") from None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ValueError(f"{var}: expected JSON (this setting is a list or a mapping)") from None


def env_overrides(env: dict[str, str], root_type: type) -> tuple[list[Override], list[str], list[str]]:
    """(overrides, problems, variables with the prefix that name no setting)."""
    root = mi.type_info(root_type)
    overrides: list[Override] = []
    problems: list[str] = []
    unused: list[str] = []
    for var in env:  # in the environment's order, which is the order of new providers and models
        if not var.startswith(ENV_PREFIX):
            continue
        parts = var[len(ENV_PREFIX) :].lower().split("__")
        t = _resolve(root, parts)
        if t is None:
            unused.append(var)
            continue
        try:
            overrides.append(Override(var, tuple(parts), _parse(var, env[var], t)))
        except ValueError as e:
            problems.append(str(e))
    return overrides, problems, unused


def as_tree(overrides: list[Override]) -> dict[str, Any]:
    """The overrides as nested dicts, ready to merge over the file."""
    out: dict[str, Any] = {}
    for o in sorted(overrides, key=lambda o: len(o.path)):  # a whole-section JSON value first, fields over it
        node = out
        for p in o.path[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[o.path[-1]] = o.value
    return out


SECRET_FIELDS = frozenset({"password", "token", "api_key", "secret", "aws_secret_access_key", "aws_session_token",
                           "bearer_token"})
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def lookup(tree: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for p in path:
        if not isinstance(tree, dict) or p not in tree:
            return False, None
        tree = tree[p]
    return True, tree


def _masked(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS:
        return "(secret, set)" if value else "(secret, not set)"
    if isinstance(value, dict):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value)
    return value


def shown(path: tuple[str, ...], value: Any) -> str:
    """A value fit for a terminal: secrets (at any depth) only say whether they are set; URLs lose their password."""
    v = _masked(path[-1], value)
    return v if isinstance(v, str) else msgspec.json.encode(v).decode()


def explain(dotted: str, value: Any, overrides: list[Override], layers: list[tuple[str, dict[str, Any]]]) -> str:
    """`<field> = <value shown safely>  (source)`. Layers merge deeply, so the source is the last layer
    holding the field itself (or a non-mapping above it): a file (naming the `${VAR}` it references), an
    environment variable, or the default."""
    path = tuple(dotted.split("."))
    source = "default"
    for label, tree in layers + [(f"environment {o.var}", as_tree([o])) for o in overrides]:
        found, raw = lookup(tree, path)
        for i in range(len(path) - 1, 0, -1):
            if found:
                break
            found, raw = lookup(tree, path[:i])
            found = found and not isinstance(raw, dict)
        if found:
            refs = sorted(set(REF.findall(raw))) if isinstance(raw, str) else []
            source = label + (f" via ${{{refs[0]}}}" if refs else "")
    return f"{dotted} = {shown(path, value)}  ({source})"
