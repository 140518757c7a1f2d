"""Property-based fuzz of every route of a real orgate (Hypothesis): no input answers 500, none hangs.

The route list is read from the application itself (its exact routes, its prefix routes and the admin API's
path patterns), so a route added later is fuzzed without touching this file. Paths come from each route's
own pattern (`st.from_regex`), bodies mix the fields the gateway reads with arbitrary JSON values, hostile
scalars, duplicate keys and broken JSON; queries mix known parameter names with arbitrary text. Every
example runs with a valid key holder's key and the admin token. ORGATE_FUZZ_EXAMPLES sets the number of
examples (default 400); the figures of a run are written to artifacts/fuzz-stats.json.
"""

from __future__ import annotations

import collections
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgate.config import load_settings
from tests.gateway import ADMIN_TOKEN

EXAMPLES = int(os.environ.get("ORGATE_FUZZ_EXAMPLES", "400"))
STATS = Path(__file__).resolve().parents[2] / "artifacts" / "fuzz-stats.json"
FIELDS = ["model", "max_tokens", "messages", "input", "stream", "fallbacks", "orq", "system", "tools",
          "tool_choice", "thinking", "reasoning", "reasoning_effort", "metadata", "temperature", "top_p",
          "max_output_tokens", "max_completion_tokens", "instructions", "name", "budget_usd", "budget_period",
          "rpm", "tpm", "max_concurrency", "allowed_models", "status", "expires_ms", "password", "user_id",
          "team_id", "settings", "email", "role", "n", "stop", "response_format", "previous_response_id"]
PARAMS = ["days", "since", "until", "limit", "offset", "key_id", "user_id", "team_id", "model", "status",
          "search", "group", "before_id", "api", "provider", "after_id", "before_id", "format", "scope"]
MODELS = ["claude-sonnet-4.5", "claude-haiku-4.5", "gpt-4o", "", "claude\u0000"]


def _long(n: int) -> st.SearchStrategy[str]:
    return st.just(n).map(lambda k: "9" * k)  # built on draw: a literal would make Hypothesis' repr huge


def _routes() -> list[tuple[str, str]]:
    """(method, path regex) for every route the application serves."""
    from orgate.server import admin_api
    from orgate.server.app import create_app

    app = create_app(load_settings(None, env={"ORGATE_DATA_DIR": "/tmp/orgate-fuzz-routes"}))
    out = [(m, re.escape(p)) for m, p in app.routes]
    out += [(m, re.escape(p) + r"[^?#]{0,40}") for m, p, _ in app.prefix_routes if p != admin_api.PREFIX]
    out += [(m, re.escape(admin_api.PREFIX) + rx.pattern) for m, rx, _ in admin_api.ROUTES]
    return sorted(set(out))


ROUTES = _routes()

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**31, max_value=2**80)
           | st.floats(allow_nan=False) | st.sampled_from([1e30, -1, 0, "", "\u00b2", "\u0000"]) | _long(300)
           | st.text(max_size=20) | st.sampled_from(MODELS))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(FIELDS + ["type",
                      "role", "content", "text"]) | st.text(max_size=6), c, max_size=4), max_leaves=12)
messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool"]) | values,
                                           "content": st.text(max_size=30) | values}), max_size=3)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    obj = draw(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=6))
    if draw(st.booleans()):
        obj = {"model": draw(st.sampled_from(MODELS)), "max_tokens": 16, "messages": draw(messages), **obj}
    raw = json.dumps(obj).encode()
    tweak = draw(st.sampled_from(["none", "none", "dup", "truncate", "deep", "garbage"]))
    if tweak == "dup" and len(raw) > 2:
        raw = b'{"model":"claude-opus-4.5",' + raw[1:] if raw != b"{}" else raw
    elif tweak == "truncate":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif tweak == "deep":
        raw = b'{"messages":' + b"[" * 5000 + b"]" * 5000 + b"}"
    elif tweak == "garbage":
        raw = draw(st.binary(max_size=64))
    return raw


queries = st.dictionaries(st.sampled_from(PARAMS) | st.text(max_size=5),
                          st.text(max_size=30) | st.sampled_from(["\u00b2", "-1", "1e9", "\u0000"]) | _long(5000),
                          max_size=3)


@pytest.fixture(scope="module")
def stats() -> Iterator[dict]:
    s: dict = {"cases": 0, "routes": [f"{m} {p}" for m, p in ROUTES], "statuses": collections.Counter(),
               "server_errors": []}
    yield s
    STATS.parent.mkdir(parents=True, exist_ok=True)
    STATS.write_text(json.dumps({**s, "route_count": len(ROUTES)}, indent=1, default=str))


@pytest.mark.timeout(7200)
def test_every_route_survives_fuzzing(gw, fake, stats):
    key = gw.create_key("fuzz")
    client = httpx.Client(base_url=gw.url, timeout=60)  # a request over 60 s counts as a hang

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(route=st.sampled_from(ROUTES), data=st.data())
    def one(route: tuple[str, str], data: st.DataObject) -> None:
        method, pattern = route
        path = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda p: "?" not in p and "#" not in p))
        # Mostly the credential the route wants, so most cases get past authentication to the parsing.
        wanted = f"Bearer {ADMIN_TOKEN}" if path.startswith("/admin/") else f"Bearer {key}"
        auth = data.draw(st.sampled_from([wanted] * 6 + [f"Bearer {key}", f"Bearer {ADMIN_TOKEN}", "Bearer x", None]))
        headers = {"content-type": "application/json", "x-api-key": key}
        if auth:
            headers["authorization"] = auth
        body = data.draw(bodies()) if method in ("POST", "PATCH", "PUT") else None
        try:
            r = client.request(method, path, params=data.draw(queries), content=body, headers=headers)
        except httpx.InvalidURL:
            return  # a path httpx itself refuses to send
        stats["cases"] += 1
        stats["statuses"][r.status_code] += 1
        if r.status_code == 500:
            stats["server_errors"].append((method, path, r.text[:200]))
        assert r.status_code != 500, (method, path, body and body[:300], r.text[:300])

    try:
        one()
    finally:
        client.close()
    assert stats["cases"] >= EXAMPLES * 0.9 and not stats["server_errors"]
