from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests import pg
from tests.gateway import ADMIN_TOKEN, Gateway


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway(request, fake_session) -> Iterator[Gateway]:
    """The console and its API on both databases: PostgreSQL returns types SQLite never does (Decimal sums)."""
    with pg.database_url(request.param) as url:
        gw = Gateway(fake_session.url, database_url=url).start()
        yield gw
        gw.stop()


@pytest.fixture(autouse=True)
def no_admin_lockout_carried_over(request) -> Iterator[None]:
    """Tests here share one gateway per database, and some send wrong admin credentials on purpose. The
    gateway throttles those per client address (after three, even the right credential waits), so a test
    that ends with failures counted would lock the next test out. After each test that used the shared
    gateway, sign in with the admin token (a success clears the count), waiting out a lockout if one is on."""
    yield
    if "gateway" not in request.fixturenames:
        return
    gw: Gateway = request.getfixturevalue("gateway")
    for _ in range(10):
        r = httpx.get(gw.url + "/admin/api/session", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        if r.status_code != 429:
            assert r.status_code == 200, r.text
            return
        time.sleep(float(r.headers.get("retry-after", "1")))
    raise AssertionError("admin lockout did not clear")


@pytest.fixture
def admin(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url + "/admin/api/", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=10) as c:
        yield c


@pytest.fixture
def new_key(admin: httpx.Client):
    """Creates a key through the admin API; returns (plaintext, row)."""

    def make(name: str = "web-test", **fields):
        r = admin.post("keys", json={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()["key"], r.json()["data"]

    return make
