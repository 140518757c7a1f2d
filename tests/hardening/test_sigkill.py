"""SIGKILL right after the last response: what a killed instance can lose is bounded, and its budget lease
comes back soon (default settings), not after 300 s."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests import pg
from tests.gateway import Gateway
from tests.hardening.conftest import DATABASES

BUDGET = 10_000_000  # $10: a lease chunk is $0.50
BODY = {"model": "claude-sonnet-4.5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def _reserved(gw: Gateway, kid: int) -> int:
    return gw.query("SELECT reserved_micros FROM keys WHERE id = :k", k=kid)[0]["reserved_micros"]


@pytest.mark.parametrize("db", DATABASES)
def test_sigkill_loses_at_most_the_last_flush_and_its_lease_comes_back(fake_session, db):
    with pg.database_url(db) as url:
        # Default budget and ledger settings (the test helper's fast flush is put back to the default).
        first = Gateway(fake_session.url, database_url=url, env={"ORGATE_LEDGER__FLUSH_INTERVAL_SECONDS": "0.5"})
        first.start()
        key = first.create_key("killed", budget_micros=BUDGET)
        kid = first.query("SELECT id FROM keys WHERE prefix = :p", p=key[:12])[0]["id"]
        ids = []
        for _ in range(3):
            r = httpx.post(first.url + "/v1/messages", headers={"x-api-key": key}, json=BODY, timeout=30)
            assert r.status_code == 200
            ids.append(r.headers["x-request-id"])
        time.sleep(1.5)  # longer than one flush interval (0.5 s) and a flush
        last = httpx.post(first.url + "/v1/messages", headers={"x-api-key": key}, json=BODY, timeout=30)
        assert last.status_code == 200
        assert first.proc is not None
        first.proc.send_signal(signal.SIGKILL)  # within a few ms of the last response
        first.proc.wait(10)
        first._log.close()
        killed_at = time.monotonic()
        # Rows recorded more than a flush interval before the kill are in the ledger.
        landed = {r["request_id"] for r in first.query("SELECT request_id FROM ledger WHERE key_id = :k", k=kid)}
        assert set(ids) <= landed, (ids, landed)
        assert _reserved(first, kid) > 0  # the killed instance's lease is still reserved
        # A restarted instance (same database, new process) gets the dead one's lease back.
        second = Gateway(fake_session.url, database_url=url, data_dir=first.data_dir).start()
        try:
            while _reserved(second, kid) > 0 and time.monotonic() - killed_at < 90:
                time.sleep(0.5)
            back_after = time.monotonic() - killed_at
            print(f"lease back {back_after:.1f} s after SIGKILL ({db})")
            assert _reserved(second, kid) == 0 and back_after < 60, back_after
            r = httpx.post(second.url + "/v1/messages", headers={"x-api-key": key}, json=BODY, timeout=30)
            assert r.status_code == 200
        finally:
            second.stop()
