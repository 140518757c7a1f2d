"""Attacks and mistakes on the browser leg: each is refused at the callback and nothing is issued (no token
row, no person created, and Claude Code's poll never receives a token)."""

from __future__ import annotations

import httpx
import pytest

from tests.sso.helpers import Browser, DeviceLogin, bearer, login


def _tokens(gw) -> int:
    return gw.query("SELECT COUNT(*) AS n FROM sso_tokens")[0]["n"]


def _nothing_issued(gw, d: DeviceLogin, before: int) -> None:
    assert _tokens(gw) == before
    r = d.poll()
    assert r.status_code == 400 and r.json()["error"] in ("authorization_pending", "access_denied")


@pytest.fixture
def started(sso_gw, idp):
    return DeviceLogin.start(sso_gw), Browser(sso_gw), _tokens(sso_gw)


def test_wrong_pkce_verifier(sso_gw, idp, started):
    """Code injection: a code obtained for another login (another PKCE challenge) is delivered to this login's
    callback; orgate's verifier does not match that challenge and the IdP refuses the exchange."""
    d, victim, before = started
    victim_back = victim.to_idp(victim.confirm(d.device["verification_uri_complete"], d.device["user_code"]))
    other = DeviceLogin.start(sso_gw)
    attacker = Browser(sso_gw)
    attacker_back = attacker.to_idp(attacker.confirm(other.device["verification_uri_complete"],
                                                     other.device["user_code"]))
    victim_cb = httpx.URL(victim_back.headers["location"])
    attacker_code = httpx.URL(attacker_back.headers["location"]).params["code"]
    forged = victim_cb.copy_set_param("code", attacker_code)
    r = victim.http.get(forged)
    assert r.status_code == 403 and "refused the code exchange" in r.text
    _nothing_issued(sso_gw, d, before)


def test_wrong_state(sso_gw, idp, started):
    d, browser, before = started
    back = browser.to_idp(browser.confirm(d.device["verification_uri_complete"], d.device["user_code"]))
    cb = httpx.URL(back.headers["location"])
    r = browser.http.get(cb.copy_set_param("state", cb.params["state"][:-1] + "x"))
    assert r.status_code == 403 and "state" in r.text
    _nothing_issued(sso_gw, d, before)


def test_callback_from_another_browser(sso_gw, idp, started):
    d, browser, before = started
    back = browser.to_idp(browser.confirm(d.device["verification_uri_complete"], d.device["user_code"]))
    r = httpx.get(back.headers["location"])  # no binding cookie: a link forwarded to someone else
    assert r.status_code == 403
    _nothing_issued(sso_gw, d, before)


def test_id_token_signed_by_another_key(sso_gw, idp, started):
    idp.sign_with_rogue = True
    d, browser, before = started
    r = browser.sign_in(d.device)
    assert r.status_code == 403 and "ID token is not valid" in r.text
    _nothing_issued(sso_gw, d, before)


def test_expired_id_token(sso_gw, idp, started):
    idp.expired_id_token = True
    d, browser, before = started
    r = browser.sign_in(d.device)
    assert r.status_code == 403 and "ID token is not valid" in r.text
    _nothing_issued(sso_gw, d, before)


def test_redirect_uri_one_character_off(sso_gw, idp, started):
    d, browser, before = started
    to_idp = browser.confirm(d.device["verification_uri_complete"], d.device["user_code"])
    url = httpx.URL(to_idp.headers["location"])
    tampered = url.copy_set_param("redirect_uri", url.params["redirect_uri"] + "s")
    assert browser.http.get(tampered).status_code == 400  # the IdP: not the registered URI
    # An IdP that let it through: the code is bound to the wrong URI, and orgate's exchange names the exact one.
    idp.lax_redirects = True
    back = browser.http.get(tampered)
    cb = httpx.URL(back.headers["location"])
    assert cb.path == "/oauth/callbacks"
    real = httpx.URL(sso_gw.url + "/oauth/callback", params=dict(cb.params))
    r = browser.http.get(real)
    assert r.status_code == 403 and "refused the code exchange" in r.text
    _nothing_issued(sso_gw, d, before)


def test_person_outside_the_allowed_group(sso_gw, idp, started):
    idp.person.groups = ["engineering"]
    idp.person.sub, idp.person.email = "00u-mallory", "mallory@example.com"
    d, browser, before = started
    r = browser.sign_in(d.device)
    assert r.status_code == 403 and "not in a group allowed" in r.text
    assert d.poll().json()["error"] == "access_denied"
    assert _tokens(sso_gw) == before
    assert sso_gw.query("SELECT COUNT(*) AS n FROM sso_users WHERE subject = '00u-mallory'")[0]["n"] == 0


def test_unverified_email_is_refused(sso_gw, idp, started):
    idp.person.email_verified = False
    d, browser, before = started
    assert browser.sign_in(d.device).status_code == 403
    assert d.poll().json()["error"] == "access_denied"
    assert _tokens(sso_gw) == before


def test_cross_site_confirmation_is_refused(sso_gw, idp, started):
    d, browser, before = started
    r = browser.http.post(sso_gw.url + "/device", data={"user_code": d.device["user_code"]},
                          headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "location" not in r.headers
    _nothing_issued(sso_gw, d, before)


def test_token_endpoint_wants_a_form(sso_gw, idp, started):
    d, _, _ = started
    r = d.client.post(d.meta["token_endpoint"], json={"grant_type": "refresh_token", "refresh_token": "x"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert d.token_request(grant_type="password").json()["error"] == "unsupported_grant_type"


def test_telemetry_credential_checked_before_the_body_is_read(sso_gw, idp):
    """Issue 11 finding 5 on the OTLP intake: without a valid gateway token a declared 8 MB export is never
    read; the answer (200, as always for telemetry: it is dropped) comes at once and the connection closes."""
    import socket

    for auth in (b"", b"authorization: Bearer not-a-token\r\n"):
        s = socket.create_connection(("127.0.0.1", sso_gw.port), timeout=10)
        s.sendall(b"POST /v1/metrics HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n" + auth +
                  b"content-length: 8000000\r\n\r\n")
        s.settimeout(5)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except TimeoutError:
            raise AssertionError(f"still open after 5 s, answered {answer[:200]!r}") from None
        finally:
            s.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower(), answer[:300]
    token = login(sso_gw)["access_token"]  # a signed-in exporter's telemetry is still read and accepted
    r = httpx.post(sso_gw.url + "/v1/logs", headers=bearer(token, **{"content-type": "application/json"}),
                   content=b'{"resourceLogs": []}')
    assert r.status_code == 200 and r.json() == {}
