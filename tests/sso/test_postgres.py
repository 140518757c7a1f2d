"""The sign-in flow on PostgreSQL: the same conditional updates decide polls, rotations and replays there,
and two refreshes racing with one refresh token let exactly one through."""

from __future__ import annotations

import concurrent.futures

import anthropic
import httpx
import pytest

from tests.sso.helpers import DeviceLogin, login, sso_gateway

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_gw(fake_session, idp_session, pg_url):
    gw = sso_gateway(fake_session.url, idp_session, ORGATE_DATABASE_URL=pg_url)
    gw.database_url = pg_url
    gw.start(timeout=120)
    yield gw
    gw.stop()


def test_sign_in_spend_rotate_and_race_on_postgres(pg_gw, fake, idp):
    t = login(pg_gw)
    client = anthropic.Anthropic(base_url=pg_gw.url, auth_token=t["access_token"], api_key=None, max_retries=0)
    assert client.messages.create(model="claude-sonnet-4-5", max_tokens=32,
                                  messages=[{"role": "user", "content": "hi"}]).content
    person = pg_gw.query("SELECT * FROM sso_users WHERE email = 'alice@example.com'")[0]
    rows = pg_gw.ledger(1, key_id=person["key_id"])
    assert rows[0]["user_id"] == person["user_id"] and rows[0]["cost_micros"] > 0
    d = DeviceLogin.start(pg_gw)

    def refresh(_: int) -> httpx.Response:
        with httpx.Client(timeout=20) as c:
            return c.post(d.meta["token_endpoint"], data={"grant_type": "refresh_token",
                                                          "refresh_token": t["refresh_token"]})

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(refresh, range(4)))
    ok = [a for a in answers if a.status_code == 200]
    assert len(ok) <= 1 and all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    # Any replay revoked the family: even the one rotated token that won is dead now.
    if ok:
        again = d.token_request(grant_type="refresh_token", refresh_token=ok[0].json()["refresh_token"])
        assert again.json()["error"] == "invalid_grant"
    assert pg_gw.query("SELECT COUNT(*) AS n FROM sso_tokens WHERE revoked = false AND family_id IN "
                       "(SELECT family_id FROM sso_tokens WHERE sso_user_id = :u)", u=person["id"])[0]["n"] == 0
