"""Finding 7: the gateway's own Redis or database down or hung answers 503 + x-should-retry: true +
retry-after within a bounded time, and recovers when it comes back. Real Redis, real PostgreSQL, behind a
TCP proxy that refuses or hangs on demand."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from tests import pg
from tests.fakes.tcp_proxy import TcpProxy
from tests.gateway import ADMIN_TOKEN, Gateway

BODY = {"model": "claude-sonnet-4.5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
BOUND_S = 30  # statement 10 s + pool 5 s + connect 5 s, with room for a loaded machine


def _post(gw: Gateway, key: str, path: str = "/v1/messages") -> httpx.Response:
    body = BODY if path == "/v1/messages" else {"model": BODY["model"], "messages": BODY["messages"]}
    return httpx.post(gw.url + path, headers={"x-api-key": key}, json=body, timeout=BOUND_S)


def _is_retryable_outage(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["x-should-retry"] == "true" and int(r.headers["retry-after"]) >= 1


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[TcpProxy]:
    try:
        redis.Redis(host="127.0.0.1", port=6379).ping()
    except redis.RedisError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    p = TcpProxy("127.0.0.1", 6379).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def redis_gw(fake_session, redis_proxy) -> Iterator[Gateway]:
    g = Gateway(fake_session.url, env={"ORGATE_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0"}).start()
    yield g
    g.stop()


@pytest.mark.parametrize("mode", ["refuse", "hang"])
def test_redis_outage_is_a_retryable_503(redis_gw, redis_proxy, fake, mode):
    key = redis_gw.create_key(f"redis-{mode}", rpm=1000, max_concurrency=5)
    assert _post(redis_gw, key).status_code == 200
    redis_proxy.set_mode(mode)
    try:
        for path in ("/v1/messages", "/v1/chat/completions"):
            _is_retryable_outage(_post(redis_gw, key, path))
    finally:
        redis_proxy.set_mode("pass")
    assert _post(redis_gw, key).status_code == 200


@pytest.fixture(scope="module")
def pg_behind_proxy(fake_session) -> Iterator[tuple[Gateway, TcpProxy, str]]:
    with pg.database_url("postgres") as url:
        assert url is not None
        host_port, name = url.rsplit("@", 1)[1].rsplit("/", 1)
        proxy = TcpProxy("127.0.0.1", int(host_port.rsplit(":", 1)[1])).start()
        via = url.replace(host_port, f"127.0.0.1:{proxy.port}")
        g = Gateway(fake_session.url, database_url=via).start()
        g.database_url = url  # the test's own queries go straight to PostgreSQL
        yield g, proxy, url
        g.stop()
        proxy.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["refuse", "hang"])
def test_database_outage_is_a_retryable_503(pg_behind_proxy, fake, mode):
    g, proxy, _ = pg_behind_proxy
    known = g.create_key(f"db-known-{mode}")
    assert _post(g, known).status_code == 200
    proxy.set_mode(mode)
    try:
        new = g.create_key(f"db-new-{mode}")  # not cached by the gateway: its check needs the database
        _is_retryable_outage(_post(g, new))
        _is_retryable_outage(_post(g, new, "/v1/chat/completions"))
        assert _post(g, known).status_code == 200  # a cached key on an unbudgeted path is still served
    finally:
        proxy.set_mode("pass")
    assert _post(g, g.create_key(f"db-after-{mode}")).status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize("export", ["ledger.csv", "usage.csv?group=key"])
def test_csv_export_during_a_database_outage_is_an_error_not_a_cut_200(pg_behind_proxy, export):
    """Finding 10: the export's first query fails: a retryable 503 in the admin dialect, not a 200 cut short."""
    g, proxy, _ = pg_behind_proxy
    proxy.set_mode("refuse")
    try:
        r = httpx.get(f"{g.url}/admin/api/{export}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=BOUND_S)
    finally:
        proxy.set_mode("pass")
    _is_retryable_outage(r)
    assert r.json()["type"] == "error"
    ok = httpx.get(f"{g.url}/admin/api/{export}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=BOUND_S)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/csv")
