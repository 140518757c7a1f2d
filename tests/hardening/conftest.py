from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg
from tests.gateway import Gateway

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=DATABASES)
def db_gateway(request, fake_session) -> Iterator[Gateway]:
    """A gateway on SQLite, then on a fresh PostgreSQL database: storage findings are checked on both."""
    with pg.database_url(request.param) as url:
        gw = Gateway(fake_session.url, database_url=url).start()
        yield gw
        gw.stop()


@pytest.fixture(scope="module")
def gw(fake_session) -> Iterator[Gateway]:
    """A gateway with default settings, one per test module."""
    g = Gateway(fake_session.url).start()
    yield g
    g.stop()
