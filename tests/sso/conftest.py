from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.oidc_fake import FakeOidc
from tests.gateway import Gateway
from tests.sso.helpers import sso_gateway


@pytest.fixture(scope="session")
def idp_session() -> Iterator[FakeOidc]:
    fake = FakeOidc()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def idp(idp_session: FakeOidc) -> FakeOidc:
    idp_session.reset()
    return idp_session


@pytest.fixture(scope="module")
def sso_gw(fake_session, idp_session) -> Iterator[Gateway]:
    gw = sso_gateway(fake_session.url, idp_session).start(timeout=120)
    yield gw
    gw.stop()
