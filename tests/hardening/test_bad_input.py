"""Findings 8 and 9: duplicate keys refused; every hostile input of the probe answers 4xx in the caller's
dialect (Anthropic's error shape on /v1/messages and the console, OpenAI's on the OpenAI routes)."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway import ADMIN_TOKEN, Gateway

MSGS = [{"role": "user", "content": "hi"}]
SURFACES = {
    "/v1/messages": {"model": "claude-sonnet-4.5", "max_tokens": 16, "messages": MSGS},
    "/v1/chat/completions": {"model": "claude-sonnet-4.5", "messages": MSGS},
    "/v1/responses": {"model": "claude-sonnet-4.5", "input": "hi"},
}


@pytest.fixture(scope="module")
def key(gw) -> str:
    return gw.create_key("bad-input")


@pytest.fixture(scope="module")
def haiku_key(gw) -> str:
    return gw.create_key("haiku-only", allowed_models=["claude-haiku-4.5"])


def _dialect_error(r: httpx.Response, path: str, status: int | tuple[int, ...] = 400) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (path, r.status_code, r.text[:300])
    body = r.json()
    if path.startswith("/v1/messages") or path.startswith(("/admin", "/v1/usage")):
        assert body["type"] == "error" and isinstance(body["error"]["message"], str), body
    else:
        assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    return body


def _post_raw(gw: Gateway, path: str, key: str, raw: bytes) -> httpx.Response:
    return httpx.post(gw.url + path, content=raw, timeout=60,
                      headers={"x-api-key": key, "authorization": f"Bearer {key}", "content-type": "application/json"})


@pytest.mark.parametrize("path", list(SURFACES))
def test_duplicate_model_key_refused(gw, haiku_key, fake, path):
    """Finding 8: an allow-list of Haiku must not admit a body whose other `model` says Opus."""
    base = SURFACES[path]
    inner = ",".join(f'"{k}":{httpx._utils.json_dumps(v) if False else __import__("json").dumps(v)}'
                     for k, v in base.items() if k != "model")
    raw = ('{"model":"claude-opus-4.5","model":"claude-haiku-4.5",' + inner + "}").encode()
    n = len(fake.requests)
    _dialect_error(_post_raw(gw, path, haiku_key, raw), path)
    assert len(fake.requests) == n  # nothing reached the upstream


@pytest.mark.parametrize("path", list(SURFACES))
@pytest.mark.parametrize("extra", [{"fallbacks": 5}, {"orq": {"fallbacks": 5}}, {"fallbacks": [5]},
                                   {"fallbacks": "claude-haiku-4.5"}, {"orq": {"fallbacks": {"model": 1}}}])
def test_malformed_fallbacks(gw, key, path, extra):
    _dialect_error(httpx.post(gw.url + path, json={**SURFACES[path], **extra}, headers={"x-api-key": key,
                              "authorization": f"Bearer {key}"}, timeout=60), path)


TOKENS = {"/v1/messages": "max_tokens", "/v1/chat/completions": "max_tokens", "/v1/responses": "max_output_tokens"}


@pytest.mark.parametrize("path", list(SURFACES))
@pytest.mark.parametrize("value", [1e30, 2**70, -1, "16", True])
def test_absurd_max_tokens(gw, key, path, value):
    body = {**SURFACES[path], TOKENS[path]: value}
    _dialect_error(httpx.post(gw.url + path, json=body, headers={"x-api-key": key, "authorization": f"Bearer {key}"},
                              timeout=60), path)


def test_max_completion_tokens_absurd(gw, key):
    body = {**SURFACES["/v1/chat/completions"], "max_completion_tokens": 1e30}
    _dialect_error(httpx.post(gw.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"},
                              timeout=60), "/v1/chat/completions")


@pytest.mark.parametrize("path", list(SURFACES))
def test_deep_json(gw, key, path):
    raw = b'{"model":"claude-sonnet-4.5","max_tokens":16,"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    _dialect_error(_post_raw(gw, path, key, raw), path)


@pytest.mark.parametrize("value", [["high"], {"effort": "high"}, 5])
def test_reasoning_effort_of_the_wrong_type(gw, key, value):
    chat = {**SURFACES["/v1/chat/completions"], "reasoning_effort": value}
    _dialect_error(httpx.post(gw.url + "/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {key}"},
                              timeout=60), "/v1/chat/completions")
    resp = {**SURFACES["/v1/responses"], "reasoning": {"effort": value}}
    _dialect_error(httpx.post(gw.url + "/v1/responses", json=resp, headers={"authorization": f"Bearer {key}"},
                              timeout=60), "/v1/responses")


@pytest.mark.parametrize("part_type", [["text"], {"t": "text"}, 5, None])
def test_content_part_type_of_the_wrong_type(gw, key, part_type):
    chat = {**SURFACES["/v1/chat/completions"],
            "messages": [{"role": "user", "content": [{"type": part_type, "text": "hi"}]}]}
    _dialect_error(httpx.post(gw.url + "/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {key}"},
                              timeout=60), "/v1/chat/completions")
    resp = {**SURFACES["/v1/responses"],
            "input": [{"role": "user", "content": [{"type": part_type, "text": "hi"}]}]}
    _dialect_error(httpx.post(gw.url + "/v1/responses", json=resp, headers={"authorization": f"Bearer {key}"},
                              timeout=60), "/v1/responses")


@pytest.mark.parametrize("days", ["\u00b2", "9" * 5000, "-1", "1.5", "\u0663"])
def test_usage_days(gw, key, days):
    r = httpx.get(gw.url + "/v1/usage", params={"days": days}, headers={"x-api-key": key}, timeout=60)
    _dialect_error(r, "/v1/usage")


@pytest.mark.parametrize("name", ["%00", "a" * 5000, "%00.css", "app.css%00"])
def test_static_names(gw, name):
    r = httpx.get(gw.url + "/static/" + name, timeout=60)
    assert r.status_code == 404, (name, r.status_code)


def _admin(gw: Gateway, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, gw.url + "/admin/api/" + path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                         timeout=60, **kw)


@pytest.mark.parametrize("path", ["keys/99999999999999999999", "keys/99999999999999999999/usage",
                                  "ledger?key_id=99999999999999999999", "usage?since=%C2%B2",
                                  "ledger?since=%C2%B2", "ledger?model=a%00b", "keys?search=a%00b",
                                  "usage?until=99999999999999999999999", "ledger?before_id=99999999999999999999"])
def test_admin_odd_parameters(gw, path):
    r = _admin(gw, "GET", path)
    _dialect_error(r, "/admin", (400, 404))


@pytest.mark.parametrize("path", ["ledger.csv?since=%C2%B2", "ledger.csv?model=a%00b", "ledger.csv?status=bogus",
                                  "ledger.csv?key_id=99999999999999999999", "ledger.csv?until=99999999999999999999999",
                                  "usage.csv?group=bogus", "usage.csv?since=%C2%B2", "usage.csv?provider=a%00b"])
def test_csv_export_with_a_bad_filter_is_an_error(gw, path):
    """Finding 10: a bad filter on an export is a 400 in the admin dialect, never a 200 cut short."""
    r = _admin(gw, "GET", path)
    assert not r.headers.get("content-type", "").startswith("text/csv"), r.headers
    _dialect_error(r, "/admin", 400)


@pytest.mark.parametrize("fields", [{"name": "a\u0000b"}, {"name": "x", "rpm": 2**40}, {"name": "x", "tpm": 2**63},
                                    {"name": "x", "budget_usd": "1e30"}, {"name": "x", "budget_usd": 1e30},
                                    {"name": "x", "max_concurrency": -5}, {"name": "x" * 5000},
                                    {"name": "x", "allowed_models": ["a\u0000"]}])
def test_admin_odd_key_fields(gw, fields):
    _dialect_error(_admin(gw, "POST", "keys", json=fields), "/admin")
