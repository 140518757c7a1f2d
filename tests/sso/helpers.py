"""Playing Claude Code and a browser against orgate's sign-in, over real HTTP, as they do on the wire."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fakes.oidc_fake import CLIENT_ID, CLIENT_SECRET, FakeOidc
from tests.gateway import Gateway

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CC_HEADERS = {"user-agent": "claude-code/2.1.330", "accept": "application/json, text/plain, */*"}


def sso_gateway(upstream_url: str, idp: FakeOidc, **extra_env: str) -> Gateway:
    gw = Gateway(upstream_url, env={
        "ORGATE_SSO__ISSUER": idp.url, "ORGATE_SSO__CLIENT_ID": CLIENT_ID,
        "ORGATE_SSO__CLIENT_SECRET": CLIENT_SECRET, "ORGATE_SSO__POLL_INTERVAL_SECONDS": "1",
        "ORGATE_SSO__ALLOWED_GROUPS": '["claude-users"]', "ORGATE_SSO__TEAM_GROUPS": '{"engineering": "platform"}',
        "ORGATE_SSO__ADMIN_GROUPS": '["gateway-admins"]', "ORGATE_SSO__DEFAULT_BUDGET_USD": "25",
        # every test's browser is 127.0.0.1: the per-address limits are tested on their own (test_units)
        "ORGATE_SSO__DEVICE_CODES_PER_ADDRESS": "1000", "ORGATE_SSO__CODE_ENTRIES_PER_ADDRESS": "1000",
        "ORGATE_SSO__TELEMETRY_FORWARD_URL": idp.url + "/collector",
        **extra_env,
    })
    gw.env["ORGATE_SSO__PUBLIC_URL"] = gw.url
    idp.redirect_uris.add(gw.url + "/oauth/callback")
    return gw


@dataclass
class DeviceLogin:
    """Claude Code's half: discovery, a device code, polling."""

    gw: Gateway
    meta: dict[str, Any]
    device: dict[str, Any]
    client: httpx.Client

    @classmethod
    def start(cls, gw: Gateway) -> DeviceLogin:
        client = httpx.Client(base_url=gw.url, follow_redirects=False, headers=CC_HEADERS, timeout=20)
        meta = client.get("/.well-known/oauth-authorization-server").json()
        r = client.post(meta["device_authorization_endpoint"], data={"surface": "claude_code"})
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        return cls(gw, meta, r.json(), client)

    def poll(self, wait: bool = True) -> httpx.Response:
        if wait:
            time.sleep(self.device["interval"] + 0.05)
        return self.client.post(self.meta["token_endpoint"],
                                data={"grant_type": DEVICE_GRANT, "device_code": self.device["device_code"]})

    def token_request(self, **form: str) -> httpx.Response:
        return self.client.post(self.meta["token_endpoint"], data=form)


class Browser:
    """A browser's half, with a cookie jar: the verification page, the click, the IdP, the callback."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.http = httpx.Client(follow_redirects=False, timeout=20)

    def confirm(self, url: str, user_code: str) -> httpx.Response:
        page = self.http.get(url)
        assert page.status_code == 200 and user_code in page.text
        return self.http.post(self.gw.url + "/device", data={"user_code": user_code},
                              headers={"origin": self.gw.url, "sec-fetch-site": "same-origin"})

    def to_idp(self, confirm: httpx.Response) -> httpx.Response:
        assert confirm.status_code == 302, confirm.text
        return self.http.get(confirm.headers["location"])

    def sign_in(self, device: dict[str, Any]) -> httpx.Response:
        """The whole browser leg; returns the callback's answer."""
        idp = self.to_idp(self.confirm(device["verification_uri_complete"], device["user_code"]))
        assert idp.status_code == 302, idp.text
        return self.http.get(idp.headers["location"])


def login(gw: Gateway) -> dict[str, Any]:
    """A complete device sign-in; the token answer."""
    d = DeviceLogin.start(gw)
    done = Browser(gw).sign_in(d.device)
    assert done.status_code == 200, done.text
    r = d.poll()
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01", **extra}


def execute(gw: Gateway, sql: str, **params: Any) -> None:
    """A write to the gateway's database (to age a token or a grant), as an operator's SQL would."""
    import sqlalchemy as sa

    async def go(engine: Any) -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.text(sql), params)

    gw._run(go)
