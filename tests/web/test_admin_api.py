"""The admin HTTP API against a real orgate on a real port: credentials, keys, usage, the ledger."""

from __future__ import annotations

import csv
import io
import time

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_fake import error
from tests.gateway import ADMIN_PASSWORD, ADMIN_TOKEN, Gateway


def call(gateway: Gateway, key: str, **kw):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    return client.messages.create(model=kw.pop("model", "claude-sonnet-4.5"), max_tokens=16,
                                  messages=[{"role": "user", "content": "hi"}], **kw)


def login(gateway: Gateway, password: str = ADMIN_PASSWORD, **headers: str) -> httpx.Response:
    return httpx.post(gateway.url + "/admin/login", json={"password": password}, headers=headers)


# -- credentials ---------------------------------------------------------------------------------------------

def test_admin_credential_required(gateway):
    r = httpx.get(gateway.url + "/admin/api/keys")
    assert r.status_code == 401
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "authentication_error"
    r = httpx.get(gateway.url + "/admin/api/keys", headers={"authorization": "Bearer wrong-token"})
    assert r.status_code == 401


def test_key_holder_key_is_never_an_admin_credential(gateway, key):
    r = httpx.get(gateway.url + "/admin/api/keys", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = httpx.get(gateway.url + "/admin/api/keys", headers={"x-api-key": key})
    assert r.status_code == 401
    r = login(gateway, key)
    assert r.status_code == 403 and "set-cookie" not in r.headers


def test_security_headers_and_no_store(admin, gateway):
    r = admin.get("keys")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    for path in ("/admin", "/usage", "/static/app.css", "/static/console.js"):
        page = httpx.get(gateway.url + path)
        assert page.status_code == 200, path
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
    assert httpx.get(gateway.url + "/static/%2e%2e/app.py").status_code == 404
    etag = httpx.get(gateway.url + "/static/app.css").headers["etag"]
    assert httpx.get(gateway.url + "/static/app.css", headers={"if-none-match": etag}).status_code == 304


# -- keys ----------------------------------------------------------------------------------------------------

def test_create_shows_key_once(admin, new_key):
    plaintext, row = new_key("shown-once", budget_usd="2.50", budget_period="monthly", rpm=60,
                             allowed_models=["claude-sonnet-4.5"])
    assert plaintext.startswith("sk-ant-") and len(plaintext) > 40
    assert row["budget_micros"] == 2_500_000 and row["budget_usd"] == "2.500000"
    assert row["prefix"] == plaintext[:12] and row["state"] == "active"
    got = admin.get(f"keys/{row['id']}").text
    listed = admin.get("keys", params={"search": "shown-once"}).text
    for text in (got, listed):
        assert plaintext not in text and '"hash"' not in text and row["prefix"] in text


def test_list_paging_and_search(admin, new_key):
    for i in range(3):
        new_key(f"paging-{i}")
    page = admin.get("keys", params={"search": "paging-", "limit": 2}).json()
    assert page["total"] == 3 and len(page["data"]) == 2
    rest = admin.get("keys", params={"search": "paging-", "limit": 2, "offset": 2}).json()
    assert len(rest["data"]) == 1
    assert {k["name"] for k in page["data"] + rest["data"]} == {"paging-0", "paging-1", "paging-2"}


def test_update_budget_and_validation(admin, new_key):
    _, row = new_key("budgeted")
    r = admin.patch(f"keys/{row['id']}", json={"budget_micros": 1_000_000, "budget_period": "daily", "tpm": 5000})
    assert r.status_code == 200
    d = r.json()["data"]
    assert d["budget_micros"] == 1_000_000 and d["budget_period"] == "daily" and d["tpm"] == 5000
    assert d["remaining_micros"] == 1_000_000
    for body, field in (({"budget_period": "yearly"}, "budget_period"), ({"budget_usd": "-1"}, "budget_usd"),
                        ({"colour": "red"}, "colour"), ({"allowed_models": ["gpt-nope"]}, "allowed_models"),
                        ({"rpm": 0}, "rpm"), ({"name": ""}, "name"), ({"status": "deleted"}, "status")):
        bad = admin.patch(f"keys/{row['id']}", json=body)
        assert bad.status_code == 400, body
        assert bad.json()["error"]["type"] == "invalid_request_error"
        assert bad.json()["error"]["message"].startswith(field + ":"), bad.text
    assert admin.get("keys/999999").status_code == 404
    assert admin.patch("keys/999999", json={"rpm": 5}).status_code == 404
    assert admin.post("keys", json={"budget_usd": "1"}).json()["error"]["message"].startswith("name:")


def test_disable_refuses_next_call_and_enable_restores(admin, new_key, gateway, fake):
    plaintext, row = new_key("to-disable")
    call(gateway, plaintext)
    assert admin.post(f"keys/{row['id']}/disable").json()["data"]["state"] == "disabled"
    with pytest.raises(anthropic.PermissionDeniedError):
        call(gateway, plaintext)
    # The key holder still sees the usage page data, told the key is disabled.
    usage = httpx.get(gateway.url + "/v1/usage", headers={"x-api-key": plaintext}).json()
    assert usage["key"]["state"] == "disabled"
    assert admin.patch(f"keys/{row['id']}", json={"status": "active"}).status_code == 200
    assert call(gateway, plaintext).content[0].text


def test_rotate_old_key_401_new_key_works(admin, new_key, gateway, fake):
    old, row = new_key("to-rotate")
    call(gateway, old)
    r = admin.post(f"keys/{row['id']}/rotate")
    assert r.status_code == 200
    new = r.json()["key"]
    assert new != old and r.json()["data"]["prefix"] == new[:12]
    with pytest.raises(anthropic.AuthenticationError):
        call(gateway, old)
    assert call(gateway, new).content[0].text
    assert new not in admin.get(f"keys/{row['id']}").text


def test_delete(admin, new_key, gateway):
    plaintext, row = new_key("to-delete")
    assert admin.delete(f"keys/{row['id']}").json()["data"]["status"] == "deleted"
    assert admin.get(f"keys/{row['id']}").status_code == 404
    assert all(k["id"] != row["id"] for k in admin.get("keys", params={"search": "to-delete"}).json()["data"])
    with pytest.raises(anthropic.AuthenticationError):
        call(gateway, plaintext)


# -- usage and ledger ----------------------------------------------------------------------------------------

def test_ledger_keyset_paging_filters_and_csv(admin, new_key, gateway, fake):
    plaintext, row = new_key("ledger-key")
    kid = row["id"]
    for _ in range(4):
        call(gateway, plaintext)
    call(gateway, plaintext, model="claude-haiku-4.5")
    fake.push(error(400, "invalid_request_error", "bad thing"))
    with pytest.raises(anthropic.BadRequestError):
        call(gateway, plaintext)
    gateway.ledger(min_rows=6, key_id=kid)

    seen, before = [], None
    while True:
        params = {"key_id": kid, "limit": 2, **({"before_id": before} if before else {})}
        page = admin.get("ledger", params=params).json()
        seen += [r["id"] for r in page["data"]]
        assert all(r["key_name"] == "ledger-key" for r in page["data"])
        before = page["next_before_id"]
        if before is None:
            break
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)

    errors = admin.get("ledger", params={"key_id": kid, "status": "error"}).json()["data"]
    assert [r["status"] for r in errors] == [400]
    haiku = admin.get("ledger", params={"key_id": kid, "model": "claude-haiku-4.5"}).json()["data"]
    assert len(haiku) == 1 and haiku[0]["cost_usd"] == f"0.{haiku[0]['cost_micros']:06d}"
    assert admin.get("ledger", params={"key_id": kid, "api": "openai-chat"}).json()["data"] == []
    future = int(time.time() * 1000) + 3_600_000
    assert admin.get("ledger", params={"key_id": kid, "since": future}).json()["data"] == []
    assert len(admin.get("ledger", params={"key_id": kid, "until": future, "since": "2020-01-01"}).json()["data"]) == 6
    assert admin.get("ledger", params={"status": "bad"}).json()["error"]["message"].startswith("status:")
    assert admin.get("ledger", params={"since": "yesterday"}).status_code == 400

    r = admin.get("ledger.csv", params={"key_id": kid})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 6 and {x["key_id"] for x in rows} == {str(kid)}
    assert sum(int(x["cost_micros"]) for x in rows) == admin.get(f"keys/{kid}").json()["data"]["total_spent_micros"]

    by_model = admin.get("usage", params={"group": "model", "key_id": kid}).json()["data"]
    assert {g["name"]: g["requests"] for g in by_model} == {"claude-sonnet-4.5": 5, "claude-haiku-4.5": 1}
    by_key = admin.get("usage", params={"group": "key"}).json()["data"]
    assert any(g["key_id"] == kid and g["key_name"] == "ledger-key" for g in by_key)
    by_day = admin.get("usage", params={"group": "day", "key_id": kid}).json()["data"]
    assert sum(d["requests"] for d in by_day) == 6 and "day_ms" in by_day[0]
    assert admin.get("usage", params={"group": "colour"}).status_code == 400
    detail = admin.get(f"keys/{kid}/usage").json()
    assert detail["totals"]["requests"] == 6 and detail["totals"]["errors"] == 1


def test_overview_models_providers(admin, gateway, key):
    call(gateway, key)
    gateway.ledger(key_id=gateway.key_id(key))  # this call's row is in (an earlier test's could be alone)
    o = admin.get("overview").json()
    assert o["today"]["requests"] >= 1 and o["month"]["cost_micros"] >= o["today"]["cost_micros"] > 0
    assert 0 <= o["today"]["error_rate"] <= 1 and o["by_provider"][0]["name"] == "anthropic"
    assert o["keys"]["active"] >= 1
    models = admin.get("models").json()["data"]
    sonnet = next(m for m in models if m["id"] == "claude-sonnet-4.5")
    assert sonnet["deployments"][0]["circuit"] == "closed"
    assert sonnet["rates"]["input_per_mtok_micros"] == 3_000_000
    providers = admin.get("providers").json()["data"]
    assert providers[0]["name"] == "anthropic" and "api_key" not in providers[0]


# -- console sessions ----------------------------------------------------------------------------------------

def test_session_cookie_csrf_and_logout(gateway):
    r = login(gateway)
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/admin"):
        assert attr in cookie
    assert "Secure" not in cookie and ADMIN_PASSWORD not in cookie and ADMIN_TOKEN not in cookie
    assert "Secure" in login(gateway, **{"x-forwarded-proto": "https"}).headers["set-cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    csrf = r.json()["csrf_token"]
    jar = {"cookie": f"orgate_admin={value}"}
    base = gateway.url + "/admin/api/"
    assert httpx.get(base + "session", headers=jar).json()["csrf_token"] == csrf
    assert httpx.post(base + "keys", json={"name": "x"}, headers=jar).status_code == 403
    assert httpx.post(base + "keys", json={"name": "x"}, headers={**jar, "x-csrf-token": "nope"}).status_code == 403
    evil = {**jar, "x-csrf-token": csrf, "origin": "https://evil.example"}
    assert httpx.post(base + "keys", json={"name": "x"}, headers=evil).status_code == 403
    ok = httpx.post(base + "keys", json={"name": "via-session"}, headers={**jar, "x-csrf-token": csrf,
                                                                            "origin": gateway.url})
    assert ok.status_code == 201
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    assert httpx.get(base + "keys", headers={"cookie": f"orgate_admin={tampered}"}).status_code == 401
    out = httpx.post(gateway.url + "/admin/logout", headers={**jar, "x-csrf-token": csrf})
    assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
    assert httpx.get(base + "keys", headers=jar).status_code == 401


def test_login_accepts_admin_token_and_refuses_cross_origin(gateway):
    assert login(gateway, ADMIN_TOKEN).status_code == 200
    assert login(gateway, ADMIN_PASSWORD, origin="https://evil.example").status_code == 403


@pytest.fixture
def lone_gateway(fake_session):
    gws: list[Gateway] = []

    def start(**env: str) -> Gateway:
        gw = Gateway(fake_session.url, env=env).start()
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()


def test_login_throttling(lone_gateway):
    gw = lone_gateway()
    codes = [login(gw, "wrong").status_code for _ in range(3)]
    assert codes == [401, 401, 401]
    blocked = login(gw, ADMIN_PASSWORD)  # even the right password waits out the delay
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
    time.sleep(1.1)
    assert login(gw, ADMIN_PASSWORD).status_code == 200
    assert login(gw, "wrong").status_code == 401  # success reset the counter


def test_admin_disabled_without_configuration(lone_gateway):
    gw = lone_gateway(ORGATE_ADMIN__TOKEN="", ORGATE_ADMIN__PASSWORD="")
    r = httpx.get(gw.url + "/admin/api/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]
    assert login(gw, "").status_code == 403
    token_only = lone_gateway(ORGATE_ADMIN__PASSWORD="")
    assert httpx.get(token_only.url + "/admin/api/keys",
                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
