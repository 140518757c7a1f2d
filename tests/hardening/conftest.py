from __future__ import annotations

from collections.abc import Callable, Iterator

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
def fresh_gateway(fake_session) -> Iterator[Callable[..., Gateway]]:
    """Starts gateways for the module (env overrides as keyword arguments); stops them after it."""
    started: list[Gateway] = []

    def start(**env: str) -> Gateway:
        started.append(Gateway(fake_session.url, env=env).start())
        return started[-1]

    yield start
    for g in started:
        g.stop()


@pytest.fixture(scope="module")
def gw(fresh_gateway) -> Gateway:
    """A gateway with default settings, one per test module."""
    return fresh_gateway()
