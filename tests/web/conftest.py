from __future__ import annotations

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
