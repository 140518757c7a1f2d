"""Findings 2 and 3 on SQLite and PostgreSQL: a hostile value can never stop metering, aggregates are ints."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import anthropic
import httpx
import pytest

from orgate.config import load_settings
from orgate.store import ledger_rows
from orgate.store.budget_repo import BudgetRepo
from orgate.store.db import make_engine
from orgate.store.writer import LedgerWriter
from tests.fakes.anthropic_fake import error
from tests.gateway import ADMIN_TOKEN, Gateway

HOSTILE_MODELS = ["m" * 300, "claude-sonnet-4.5\u0000", "\u00e9" * 250 + "\u0000x"]


def _key_id(gw: Gateway, key: str) -> int:
    return gw.query("SELECT id FROM keys WHERE prefix = :p", p=key[:12])[0]["id"]


def _ok(gw: Gateway, key: str, n: int) -> None:
    c = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    for _ in range(n):
        c.messages.create(model="claude-sonnet-4.5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])


def test_hostile_model_names_never_stop_metering(db_gateway, fake):
    key = db_gateway.create_key("hostile-model")
    for model in HOSTILE_MODELS:
        r = httpx.post(db_gateway.url + "/v1/messages", headers={"x-api-key": key}, json={
            "model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 404, r.text
    _ok(db_gateway, key, 5)
    kid = _key_id(db_gateway, key)
    rows = db_gateway.ledger(8, key_id=kid)
    assert sorted(r["status"] for r in rows) == [200] * 5 + [404] * 3
    stored = {r["model"] for r in rows if r["status"] == 404}
    assert "m" * 200 in stored and "claude-sonnet-4.5\ufffd" in stored and all(len(m) <= 200 for m in stored)
    assert db_gateway.query("SELECT total_spent_micros FROM keys WHERE id = :k", k=kid)[0]["total_spent_micros"] > 0


@pytest.mark.parametrize("kind", ["e" * 100, 12345, {"nested": ["x"]}])
def test_hostile_upstream_error_type_never_stops_metering(db_gateway, fake, kind):
    key = db_gateway.create_key("hostile-upstream")
    fake.push(error(400, kind, "bad"))  # type: ignore[arg-type]
    r = httpx.post(db_gateway.url + "/v1/messages", headers={"x-api-key": key}, json={
        "model": "claude-sonnet-4.5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400
    _ok(db_gateway, key, 2)
    rows = db_gateway.ledger(3, key_id=_key_id(db_gateway, key))
    assert sorted(r["status"] for r in rows) == [200, 200, 400]
    assert all(r["error_type"] is None or len(r["error_type"]) <= 64 for r in rows)


def test_refused_row_is_isolated_and_recorded(db_gateway):
    """A row the database refuses (the fitting missed it) is recorded as rejected; its neighbours land."""
    s = load_settings(None, env={"ORGATE_DATA_DIR": db_gateway.data_dir})

    async def go() -> tuple[int, int]:
        engine = make_engine(db_gateway.database_url)
        try:
            writer = LedgerWriter(BudgetRepo(engine, "test-instance", 60_000), s)
            good = [{"ts_ms": 1, "request_id": f"isolate-{i}", "key_id": None, "api": "anthropic", "status": 200,
                     "stream": False} for i in range(7)]
            for row in good[:3]:
                writer.record(row, [])
            # NOT NULL: refused on every database (queued past the fitting, which would make it '')
            writer._rows.append(ledger_rows.from_mapping({**good[0], "request_id": None}))
            for row in good[3:]:
                writer.record(row, [])
            await writer.flush()
            return writer.flushed_rows, writer.rejected_rows
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == (7, 1)
    landed = db_gateway.query("SELECT request_id FROM ledger WHERE request_id LIKE 'isolate-%'")
    assert len(landed) == 7
    rejects = db_gateway.query("SELECT error, row FROM ledger_rejects")
    assert len(rejects) == 1 and "request_id" in rejects[0]["row"] and rejects[0]["error"]


def _admin(gw: Gateway, path: str, **params) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)


def test_usage_aggregates_are_integers(db_gateway, fake):
    key = db_gateway.create_key("aggregates")
    _ok(db_gateway, key, 2)
    kid = _key_id(db_gateway, key)
    db_gateway.ledger(2, key_id=kid)
    mine = httpx.get(db_gateway.url + "/v1/usage", headers={"x-api-key": key}, timeout=30)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["totals"]["requests"] == 2 and body["by_day"][0]["requests"] == 2
    assert isinstance(body["by_model"][0]["cost_micros"], int) and body["by_model"][0]["cost_micros"] > 0
    hour_ago = str(int(time.time() * 1000) - 3_600_000)  # not day-aligned: summed from the ledger itself
    for path, params in [("/admin/api/overview", {}), (f"/admin/api/keys/{kid}/usage", {}),
                         ("/admin/api/usage", {"group": "model"}), ("/admin/api/usage", {"group": "day"}),
                         ("/admin/api/usage", {"group": "key", "since": hour_ago}),
                         ("/admin/api/usage", {"group": "day", "since": hour_ago})]:
        r = _admin(db_gateway, path, **params)
        assert r.status_code == 200, (path, params, r.text)
    cli = subprocess.run([sys.executable, "-m", "orgate", "usage", "--days", "2"], capture_output=True, text=True,
                         timeout=60, env={**db_gateway.env, "PYTHONWARNINGS": "ignore"})
    assert cli.returncode == 0, cli.stderr
    assert '"requests":' in cli.stdout and "Decimal" not in cli.stdout and os.linesep in cli.stdout
