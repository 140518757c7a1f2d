from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_fake import FakeAnthropic
from tests.gateway import Gateway


@pytest.fixture(scope="session")
def fake_session() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_session: FakeAnthropic) -> FakeAnthropic:
    fake_session.reset()
    return fake_session


@pytest.fixture(scope="session")
def gateway(fake_session: FakeAnthropic) -> Iterator[Gateway]:
    gw = Gateway(fake_session.url).start()
    yield gw
    gw.stop()


@pytest.fixture
def key(gateway: Gateway) -> str:
    return gateway.create_key("default-test-key")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database; these tests skip only where no PostgreSQL runs (CI has one)."""
    from tests import pg

    if not pg.available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    url = pg.create_database()
    yield url
    pg.drop_database(url)
