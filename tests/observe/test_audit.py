"""The audit trail through the real admin API and login, its filters, and append-only in both databases;
GET /ready against a real database and Redis."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
import sqlalchemy as sa

from orgate.store.audit_repo import AuditRepo
from orgate.store.db import make_engine, upgrade
from tests.gateway import ADMIN_PASSWORD, ADMIN_TOKEN, Gateway

AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def audit(gw: Gateway, **params: str) -> list[dict]:
    r = httpx.get(gw.url + "/admin/api/audit", params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_every_admin_action_is_recorded_with_actor_source_and_changes_never_the_key(gateway: Gateway):
    gw = gateway
    assert httpx.post(gw.url + "/admin/login", json={"password": "hunter2-guess"}).status_code == 401
    assert httpx.post(gw.url + "/admin/login", json={"password": ADMIN_PASSWORD}).status_code == 200
    created = httpx.post(gw.url + "/admin/api/keys", headers=AUTH,
                         json={"name": "audited", "budget_usd": "5", "budget_period": "monthly"}).json()
    kid, plaintext = created["data"]["id"], created["key"]
    api = f"{gw.url}/admin/api/keys/{kid}"
    assert httpx.patch(api, headers=AUTH, json={"budget_usd": "7.5"}).status_code == 200
    assert httpx.patch(api, headers=AUTH, json={"name": "audited-2", "rpm": 60}).status_code == 200
    assert httpx.post(api + "/disable", headers=AUTH).status_code == 200
    assert httpx.post(api + "/enable", headers=AUTH).status_code == 200
    rotated = httpx.post(api + "/rotate", headers=AUTH).json()
    assert httpx.delete(api, headers=AUTH).status_code == 200

    rows = audit(gw, target_type="key", target_id=str(kid))
    assert [r["action"] for r in rows] == ["key.delete", "key.rotate", "key.enable", "key.disable", "key.update",
                                           "key.budget", "key.create"]
    assert {r["actor"] for r in rows} == {"api-token"} and {r["source"] for r in rows} == {"127.0.0.1"}
    by = {r["action"]: r["changes"] for r in rows}
    assert by["key.budget"] == {"budget_micros": {"before": 5_000_000, "after": 7_500_000}}
    assert by["key.update"] == {"name": {"before": "audited", "after": "audited-2"}, "rpm": {"before": None, "after": 60}}
    assert by["key.disable"] == {"status": {"before": "active", "after": "disabled"}}
    assert by["key.enable"] == {"status": {"before": "disabled", "after": "active"}}
    assert by["key.delete"] == {"status": {"before": "active", "after": "deleted"}}
    assert by["key.create"]["budget_period"] == {"before": None, "after": "monthly"}
    assert by["key.rotate"]["prefix"]["after"] == rotated["data"]["prefix"] != by["key.rotate"]["prefix"]["before"]
    everything = orjson.dumps(audit(gw, limit="500")).decode()
    assert plaintext not in everything and rotated["key"] not in everything
    stored = gw.query("SELECT hash FROM keys WHERE id = :k", k=kid)[0]["hash"]
    assert stored not in everything

    logins = audit(gw, action="login_failed")
    assert logins and logins[0]["actor"] == "unknown" and logins[0]["source"] == "127.0.0.1"
    assert logins[0]["changes"]["reason"]["after"] == "Wrong admin password."
    assert "hunter2-guess" not in everything  # the attempted password is not kept
    assert audit(gw, action="login")[0]["actor"] == "console"
    assert [r["action"] for r in audit(gw, action="key.budget", target_id=str(kid))] == ["key.budget"]
    assert audit(gw, actor="nobody") == []
    assert httpx.get(gw.url + "/admin/api/audit?action=drop", headers=AUTH).status_code == 400
    page = audit(gw, limit="2", target_id=str(kid))
    older = audit(gw, limit="2", target_id=str(kid), before_id=str(page[-1]["id"]))
    assert [r["action"] for r in page + older] == ["key.delete", "key.rotate", "key.enable", "key.disable"]


def test_team_and_user_budgets_and_membership_are_audited(gateway: Gateway):
    gw = gateway
    team = httpx.post(gw.url + "/admin/api/teams", headers=AUTH, json={"name": "audited-team", "budget_usd": "100"})
    assert team.status_code == 201, team.text
    tid = team.json()["data"]["id"]
    user = httpx.post(gw.url + "/admin/api/users", headers=AUTH, json={"name": "audited-user"}).json()["data"]
    assert httpx.patch(f"{gw.url}/admin/api/teams/{tid}", headers=AUTH, json={"budget_usd": "150"}).status_code == 200
    assert httpx.post(f"{gw.url}/admin/api/teams/{tid}/members", headers=AUTH,
                      json={"user_id": user["id"]}).status_code == 200
    assert httpx.post(f"{gw.url}/admin/api/teams/{tid}/disable", headers=AUTH).status_code == 200
    rows = audit(gw, target_type="team", target_id=str(tid))
    assert [r["action"] for r in rows] == ["team.disable", "team.member_add", "team.budget", "team.create"]
    assert rows[2]["changes"] == {"budget_micros": {"before": 100_000_000, "after": 150_000_000}}
    assert rows[1]["changes"] == {"user_id": {"before": None, "after": user["id"]}}
    assert [r["action"] for r in audit(gw, target_type="user", target_id=str(user["id"]))] == ["user.create"]


def _append_only(url: str) -> None:
    async def go() -> None:
        engine = make_engine(url)
        try:
            await AuditRepo(engine).append(actor="test", action="login")
            for stmt in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
                with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                    async with engine.begin() as conn:
                        await conn.execute(sa.text(stmt))
            async with engine.connect() as conn:
                assert (await conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE actor = 'test'"))).scalar() >= 1
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_audit_log_is_append_only_in_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    _append_only(url)


@pytest.mark.postgres
def test_audit_log_is_append_only_in_postgresql(pg_url: str):
    upgrade(pg_url)
    _append_only(pg_url)


def test_ready_checks_database_and_migrations(gateway: Gateway):
    r = httpx.get(gateway.url + "/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}
    current = gateway.query("SELECT version_num FROM alembic_version")[0]["version_num"]

    async def set_version(v: str) -> None:
        engine = make_engine(gateway.database_url)
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": v})
        await engine.dispose()

    asyncio.run(set_version("0002"))
    try:
        r = httpx.get(gateway.url + "/ready")
        assert r.status_code == 503 and r.json()["checks"]["migrations"].startswith("failed: schema at 0002")
        assert httpx.get(gateway.url + "/health").status_code == 200  # liveness does not look at the database
    finally:
        asyncio.run(set_version(current))
    assert httpx.get(gateway.url + "/ready").status_code == 200


def test_ready_checks_redis_when_configured(fake_session):
    up = Gateway(fake_session.url, env={"ORGATE_REDIS_URL": "redis://127.0.0.1:6379/0"}).start()
    down = Gateway(fake_session.url, env={"ORGATE_REDIS_URL": "redis://127.0.0.1:1/0"}).start()
    try:
        assert httpx.get(up.url + "/ready").json()["checks"]["redis"] == "ok"
        r = httpx.get(down.url + "/ready")
        assert r.status_code == 503 and r.json()["checks"]["redis"].startswith("failed: ")
        assert r.json()["checks"]["database"] == "ok"
    finally:
        up.stop()
        down.stop()
