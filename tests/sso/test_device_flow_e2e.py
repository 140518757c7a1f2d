"""The Claude Code gateway protocol end to end: orgate on a real port, a fake OIDC provider on another, the
fake Anthropic upstream; Claude Code's and the browser's requests played over HTTP as they send them."""

from __future__ import annotations

import gzip
import time

import anthropic
import httpx
import orjson
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from tests.gateway import ADMIN_TOKEN
from tests.sso.helpers import DEVICE_GRANT, Browser, DeviceLogin, bearer, execute, login

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def _sdk(gw, token):
    # Claude Code sends the gateway token as Authorization: Bearer (ANTHROPIC_AUTH_TOKEN in the SDK).
    return anthropic.Anthropic(base_url=gw.url, auth_token=token, api_key=None, max_retries=0,
                               default_headers={"x-claude-code-session-id": "sess-e2e-1"})


def _person(gw, email="alice@example.com"):
    return gw.query("SELECT * FROM sso_users WHERE email = :e", e=email)[0]


def test_discovery_document_is_same_origin_and_complete(sso_gw):
    meta = httpx.get(sso_gw.url + "/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == sso_gw.url
    for k in ("device_authorization_endpoint", "token_endpoint", "revocation_endpoint"):
        assert meta[k].startswith(sso_gw.url + "/oauth/")
    assert meta["grant_types_supported"] == [DEVICE_GRANT, "refresh_token"]
    assert "authorization_endpoint" not in meta


def test_device_flow_then_every_claude_code_request(sso_gw, fake, idp):
    d = DeviceLogin.start(sso_gw)
    assert d.device["verification_uri"] == sso_gw.url + "/device"
    assert len(d.device["user_code"]) == 9 and d.device["user_code"][4] == "-"
    before = d.poll()
    assert before.status_code == 400 and before.json()["error"] == "authorization_pending"
    too_fast = d.poll(wait=False)
    assert too_fast.json()["error"] == "slow_down"
    time.sleep(5)  # slow_down added 5 s to the interval
    browser = Browser(sso_gw)
    to_idp = browser.confirm(d.device["verification_uri_complete"], d.device["user_code"])
    assert to_idp.status_code == 302 and "orgate_sso=" in to_idp.headers["set-cookie"]
    authorize = httpx.URL(to_idp.headers["location"])
    assert authorize.params["code_challenge_method"] == "S256" and authorize.params["nonce"]
    assert authorize.params["redirect_uri"] == sso_gw.url + "/oauth/callback"
    back = browser.to_idp(to_idp)
    done = browser.http.get(back.headers["location"])
    assert done.status_code == 200 and "Signed in" in done.text
    time.sleep(6)
    r = d.poll(wait=False)
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600 and tokens["refresh_token"]
    again = d.poll()
    assert again.json()["error"] == "expired_token"  # device codes are single-use
    claims = _jwt_claims(tokens["access_token"])
    assert claims["sub"] == "00u-alice" and claims["email"] == "alice@example.com" and claims["team"] == "platform"
    # Stored hashed: neither token appears in the database.
    stored = sso_gw.query("SELECT hash FROM sso_tokens")
    assert all(tokens["access_token"] not in r["hash"] and tokens["refresh_token"] != r["hash"] for r in stored)
    _inference(sso_gw, fake, tokens["access_token"])


def _jwt_claims(token):
    import base64

    part = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _inference(gw, fake, token):
    client = _sdk(gw, token)
    msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=64,
                                 messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                messages=[{"role": "user", "content": "stream please"}]) as s:
        assert "".join(s.text_stream)
    count = client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}])
    assert count.input_tokens > 0
    models = httpx.get(gw.url + "/v1/models?limit=1000", headers=bearer(token)).json()
    assert any("claude" in m["id"] for m in models["data"])
    assert fake.requests and all(r["headers"].get("x-api-key") != token for r in fake.requests)
    person = _person(gw)
    rows = gw.ledger(3, key_id=person["key_id"])
    assert {r["endpoint"] for r in rows} >= {"messages", "count_tokens"}
    assert any(r["stream"] for r in rows) and any(not r["stream"] for r in rows)
    assert sum(r["cost_micros"] for r in rows) > 0
    sessions = httpx.get(gw.url + "/admin/api/sso/sessions", headers=ADMIN).json()["data"]
    seen = [x for x in sessions if x["session_id"] == "sess-e2e-1"]
    assert seen and seen[0]["email"] == "alice@example.com" and seen[0]["requests"] >= 3
    # Attribution: every row carries the person's orgate user and the team their IdP group maps to.
    owners = gw.query("SELECT DISTINCT u.email, t.name AS team FROM ledger l JOIN users u ON u.id = l.user_id "
                      "JOIN teams t ON t.id = l.team_id WHERE l.key_id = :k", k=person["key_id"])
    assert owners == [{"email": "alice@example.com", "team": "platform"}]
    user = gw.query("SELECT * FROM users WHERE id = :u", u=person["user_id"])[0]
    assert user["external_id"].endswith("#00u-alice") and user["budget_micros"] == 25_000_000
    assert user["spent_micros"] == sum(r["cost_micros"] for r in gw.query(
        "SELECT cost_micros FROM ledger WHERE user_id = :u", u=person["user_id"]))


def test_managed_settings_envelope_etag_and_304(sso_gw, idp):
    token = login(sso_gw)["access_token"]
    none = httpx.get(sso_gw.url + "/managed/settings", headers=bearer(token))
    assert none.status_code == 404  # no policy at all is not the same as an empty one
    put = httpx.put(sso_gw.url + "/admin/api/sso/managed-settings/global", headers=ADMIN, json={"settings": {
        "env": {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_METRICS_EXPORTER": "otlp"},
        "permissions": {"deny": ["Bash(rm -rf:*)"]}}})
    assert put.status_code == 200, put.text
    httpx.put(sso_gw.url + "/admin/api/sso/managed-settings/platform", headers=ADMIN, json={"settings": {
        "env": {"CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}, "permissions": {"deny": ["WebFetch"]}}})
    r = httpx.get(sso_gw.url + "/managed/settings", headers=bearer(token, **{"cache-control": "no-cache"}))
    assert r.status_code == 200, r.text
    env = r.json()
    assert set(env) == {"uuid", "checksum", "settings"}
    assert env["settings"]["env"] == {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_METRICS_EXPORTER": "otlp",
                                      "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}
    assert env["settings"]["permissions"]["deny"] == ["Bash(rm -rf:*)", "WebFetch"]
    import hashlib

    # Claude Code's own If-None-Match: SHA-256 of the sorted-key compact settings.
    mine = hashlib.sha256(orjson.dumps(env["settings"], option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert env["checksum"] == f"sha256:{mine}" and r.headers["etag"] == f'"sha256:{mine}"'
    again = httpx.get(sso_gw.url + "/managed/settings", headers=bearer(token, **{"if-none-match": f'"sha256:{mine}"'}))
    assert again.status_code == 304 and again.content == b""
    # A change in the console is a new checksum: the client's cached tag no longer matches.
    httpx.put(sso_gw.url + "/admin/api/sso/managed-settings/platform", headers=ADMIN,
              json={"settings": {"model": "claude-sonnet-4-5"}})
    changed = httpx.get(sso_gw.url + "/managed/settings", headers=bearer(token, **{"if-none-match": f'"sha256:{mine}"'}))
    assert changed.status_code == 200 and changed.json()["settings"]["model"] == "claude-sonnet-4-5"
    assert httpx.get(sso_gw.url + "/managed/settings").status_code == 401
    summary = httpx.get(sso_gw.url + "/admin/api/sso/telemetry?by=user", headers=ADMIN).json()["data"]
    fetches = {r["metric"]: r["value"] for r in summary if r["email"] == "alice@example.com"}
    assert fetches["gateway:managed_settings_304"] >= 1 and fetches["gateway:managed_settings_200"] >= 2


def _metrics_export(lines_added: int) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    attr = rm.resource.attributes.add()
    attr.key, attr.value.string_value = "user.email", "alice@example.com"
    m = rm.scope_metrics.add().metrics.add()
    m.name = "claude_code.lines_of_code.count"
    dp = m.sum.data_points.add()
    dp.as_int = lines_added
    a = dp.attributes.add()
    a.key, a.value.string_value = "type", "added"
    s = rm.scope_metrics[0].metrics.add()
    s.name = "claude_code.session.count"
    s.sum.data_points.add().as_int = 1
    return req.SerializeToString()


def test_telemetry_accepted_attributed_and_never_fails(sso_gw, idp):
    token = login(sso_gw)["access_token"]
    h = bearer(token, **{"content-type": "application/x-protobuf"})
    r = httpx.post(sso_gw.url + "/v1/metrics", headers=h, content=_metrics_export(12))
    assert r.status_code == 200 and r.content == b""
    for _ in range(50):  # relayed verbatim to the operator's collector, in the background
        if any(body == _metrics_export(12) for _, _, body in idp.collected):
            break
        time.sleep(0.1)
    assert ("/collector/v1/metrics", "application/x-protobuf", _metrics_export(12)) in idp.collected
    r = httpx.post(sso_gw.url + "/v1/metrics", headers={**h, "content-encoding": "gzip"},
                   content=gzip.compress(_metrics_export(3)))
    assert r.status_code == 200
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"attributes": [{"key": "event.name", "value": {"stringValue": "tool_decision"}},
                        {"key": "decision", "value": {"stringValue": "accept"}}]}]}]}]}
    r = httpx.post(sso_gw.url + "/v1/logs", headers=bearer(token, **{"content-type": "application/json"}),
                   content=orjson.dumps(logs))
    assert r.status_code == 200 and r.json() == {}
    junk = httpx.post(sso_gw.url + "/v1/traces", headers=h, content=b"\xff\x00not protobuf")
    assert junk.status_code == 200  # garbage is dropped, never an error for the exporter
    summary = httpx.get(sso_gw.url + "/admin/api/sso/telemetry?by=user", headers=ADMIN).json()["data"]
    mine = {r["metric"]: r["value"] for r in summary if r["email"] == "alice@example.com"}
    assert mine["claude_code.lines_of_code.count:type=added"] >= 15
    assert mine["claude_code.session.count"] >= 2
    assert mine["event:tool_decision:decision=accept"] >= 1
    teams = httpx.get(sso_gw.url + "/admin/api/sso/telemetry?by=team", headers=ADMIN).json()["data"]
    assert any(r["team"] == "platform" and r["metric"] == "exports:metrics" for r in teams)


def test_refresh_rotates_and_a_replay_revokes_the_family(sso_gw, fake, idp):
    first = login(sso_gw)
    d = DeviceLogin.start(sso_gw)
    second = d.token_request(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"] and rotated["access_token"] != first["access_token"]
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(rotated["access_token"])).status_code == 200
    replay = d.token_request(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # The whole family is gone: the rotated refresh token and the live access token too.
    after = d.token_request(grant_type="refresh_token", refresh_token=rotated["refresh_token"])
    assert after.json()["error"] == "invalid_grant"
    time.sleep(1.5)
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(rotated["access_token"])).status_code == 401


def test_logout_revokes_both_tokens(sso_gw, idp):
    t = login(sso_gw)
    d = DeviceLogin.start(sso_gw)
    revoke = d.meta["revocation_endpoint"]
    assert d.client.post(revoke, data={"token": t["access_token"]}).json() == {}
    assert d.client.post(revoke, data={"token": t["refresh_token"], "token_type_hint": "refresh_token"}).json() == {}
    assert d.client.post(revoke, data={"token": "never-issued"}).status_code == 200
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"])).status_code == 401
    assert d.token_request(grant_type="refresh_token",
                           refresh_token=t["refresh_token"]).json()["error"] == "invalid_grant"


def test_expired_access_token_and_device_code(sso_gw, idp):
    t = login(sso_gw)
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"])).status_code == 200
    now = int(time.time() * 1000)
    execute(sso_gw, "UPDATE sso_tokens SET expires_ms = :p, updated_ms = :n WHERE kind = 'access' AND expires_ms > :n",
                 p=now - 1, n=now)
    time.sleep(1.5)
    r = httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"]))
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    d = DeviceLogin.start(sso_gw)
    execute(sso_gw, "UPDATE sso_device_grants SET expires_ms = :p WHERE user_code = :c", p=now - 1,
                 c=d.device["user_code"])
    assert d.poll().json()["error"] == "expired_token"


def test_disabling_the_person_cuts_access_within_a_second(sso_gw, idp):
    t = login(sso_gw)
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"])).status_code == 200
    person = _person(sso_gw)
    r = httpx.patch(sso_gw.url + f"/admin/api/sso/users/{person['id']}", headers=ADMIN, json={"status": "disabled"})
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    time.sleep(1.5)
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"])).status_code in (401, 403)
    d = DeviceLogin.start(sso_gw)
    assert d.token_request(grant_type="refresh_token",
                           refresh_token=t["refresh_token"]).json()["error"] == "invalid_grant"
    httpx.patch(sso_gw.url + f"/admin/api/sso/users/{person['id']}", headers=ADMIN, json={"status": "active"})
    # The same through the people-and-teams model (what `orgate users disable` writes): same bound.
    t = login(sso_gw)
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"])).status_code == 200
    now = int(time.time() * 1000)
    execute(sso_gw, "UPDATE users SET status = 'disabled', updated_ms = :n WHERE id = :u", n=now,
            u=person["user_id"])
    time.sleep(1.5)
    r = httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"]))
    assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]
    assert d.token_request(grant_type="refresh_token",
                           refresh_token=t["refresh_token"]).json()["error"] == "invalid_grant"
    assert Browser(sso_gw).sign_in(DeviceLogin.start(sso_gw).device).status_code == 403  # and no new sign-in
    execute(sso_gw, "UPDATE users SET status = 'active', updated_ms = :n WHERE id = :u", n=now + 1,
            u=person["user_id"])


def test_removal_from_the_allowed_group_at_the_idp_ends_the_sign_in_at_refresh(sso_gw, idp):
    t = login(sso_gw)
    idp.person.groups.remove("claude-users")
    d = DeviceLogin.start(sso_gw)
    r = d.token_request(grant_type="refresh_token", refresh_token=t["refresh_token"])
    assert r.json()["error"] == "invalid_grant"
    time.sleep(1.5)
    assert httpx.get(sso_gw.url + "/v1/models", headers=bearer(t["access_token"])).status_code == 401


def test_idp_refusal_is_access_denied(sso_gw, idp):
    idp.deny = True
    d = DeviceLogin.start(sso_gw)
    done = Browser(sso_gw).sign_in(d.device)
    assert done.status_code == 403
    assert d.poll().json()["error"] == "access_denied"


def test_signing_key_rotation_at_the_idp(sso_gw, idp):
    idp.rotate()
    assert login(sso_gw)["access_token"]


def test_admin_console_sign_in_through_the_idp(sso_gw, idp):
    b = httpx.Client(follow_redirects=False)
    idp.person.groups.append("gateway-admins")
    start = b.get(sso_gw.url + "/admin/sso/login")
    assert start.status_code == 302
    back = b.get(start.headers["location"])
    done = b.get(back.headers["location"])
    assert done.status_code == 303 and done.headers["location"] == "/admin"
    assert b.get(sso_gw.url + "/admin/api/sso/users").status_code == 200  # the console session works
    idp.person.groups.remove("gateway-admins")
    other = httpx.Client(follow_redirects=False)
    start = other.get(sso_gw.url + "/admin/sso/login")
    refused = other.get(other.get(start.headers["location"]).headers["location"])
    assert refused.status_code == 403
    assert other.get(sso_gw.url + "/admin/api/sso/users").status_code == 401
