"""Alert webhooks end to end: two orgate instances on one PostgreSQL database, a real HTTP receiver that fails
its first two deliveries, budget thresholds crossed on alternating instances. Each event arrives once, signed."""

from __future__ import annotations

import hashlib
import hmac
import time

import anthropic
import httpx
import orjson
import pytest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply
from tests.gateway import ADMIN_TOKEN, Gateway
from tests.observe.receiver import Receiver

SECRET = "whsec-test-0123456789"
MSG = [{"role": "user", "content": "hi"}]
# 10 input + 180 output tokens of claude-sonnet-4.5 ($3 / $15 per MTok): 30 + 2,700 micro-USD a request.
USAGE = {"input_tokens": 10, "output_tokens": 180}
COST = 2730
BUDGET = 10_000  # 27.3 %, 54.6 % (50 crossed), 81.9 % (80 crossed), then refused: exhausted (100)

pytestmark = pytest.mark.postgres


def verify(headers: dict[str, str], body: bytes) -> bool:
    """The receiver's side, written from the documented scheme: v1 = HMAC-SHA256(secret, "<t>." + body)."""
    parts = dict(p.split("=", 1) for p in headers["x-orgate-signature"].split(","))
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 60


def wait_for(check, timeout: float = 20.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def receiver():
    r = Receiver(lambda n, path, headers, body: 500 if n <= 2 else 200).start()
    yield r
    r.stop()


def test_thresholds_fire_once_across_two_instances_and_survive_a_failing_receiver(
        pg_url: str, fake_session: FakeAnthropic, fake: FakeAnthropic, receiver: Receiver):
    env = {"ORGATE_ALERTS__WEBHOOKS": orjson.dumps([{"url": f"{receiver.url}/hook", "secret": SECRET}]).decode(),
           "ORGATE_ALERTS__RETRY_BASE_SECONDS": "0.2", "ORGATE_ALERTS__POLL_SECONDS": "0.2"}
    a = Gateway(fake_session.url, database_url=pg_url, env=env).start(timeout=120)
    b = Gateway(fake_session.url, database_url=pg_url, env=env).start(timeout=120)
    try:
        key = a.create_key("alerted", budget_micros=BUDGET, budget_period="monthly")
        key_id = a.query("SELECT id FROM keys WHERE name = 'alerted'")[0]["id"]
        clients = [anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0) for gw in (a, b)]
        fake.push(*[Reply(usage=USAGE) for _ in range(3)])
        for i in range(3):  # A, B, A: each settles before the next, so each instance sees its own crossing
            clients[i % 2].messages.create(model="claude-sonnet-4.5", max_tokens=200, messages=MSG)
            wait_for(lambda n=i: a.query("SELECT spent_micros FROM keys WHERE id = :k", k=key_id)[0]
                     ["spent_micros"] == COST * (n + 1), what=f"settlement {i + 1}")
        for c in (clients[1], clients[0], clients[1]):  # refused on both instances: exhausted once
            with pytest.raises(anthropic.RateLimitError):
                c.messages.create(model="claude-sonnet-4.5", max_tokens=200, messages=MSG)
        r = httpx.post(f"{a.url}/admin/api/keys/{key_id}/disable", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert r.status_code == 200

        def delivered() -> list[dict]:
            ok = [q for q in receiver.requests if q["status"] == 200]
            return ok if len(ok) >= 5 else []

        wait_for(delivered, what="five delivered events")
        time.sleep(1.5)  # time for any duplicate (another instance, a retry) to show up
        ok = [q for q in receiver.requests if q["status"] == 200]
        events = [orjson.loads(q["body"]) for q in ok]
        kinds = sorted((e["type"], e["data"].get("threshold_percent")) for e in events)
        assert kinds == [("budget.threshold", 50), ("budget.threshold", 80), ("budget.threshold", 100),
                         ("key.disabled", None), ("key.exhausted", None)]
        assert len({e["id"] for e in events}) == 5  # no event delivered twice
        assert all(e["data"]["key"]["id"] == key_id for e in events)
        assert all(verify(q["headers"], q["body"]) for q in receiver.requests)
        assert all(q["headers"]["x-orgate-event"] == orjson.loads(q["body"])["type"] for q in receiver.requests)
        # The two failed answers were retried: seven POSTs in all, and the database says which took three.
        assert len(receiver.requests) == 7
        failed_ids = {orjson.loads(q["body"])["id"] for q in receiver.requests if q["status"] == 500}
        assert failed_ids <= {e["id"] for e in events}
        rows = a.query("SELECT e.uid, d.status, d.attempts, d.last_status FROM alert_deliveries d "
                       "JOIN alert_events e ON e.id = d.event_id WHERE e.dedup_key LIKE :p OR e.dedup_key LIKE :q",
                       p=f"%:{key_id}:%", q=f"disabled:{key_id}:%")
        assert len(rows) == 5 and all(r["status"] == "delivered" and r["last_status"] == 200 for r in rows)
        assert sum(r["attempts"] for r in rows) == 7
        assert {r["uid"] for r in rows if r["attempts"] > 1} == failed_ids
        # The key holder sees the same thresholds on /usage
        usage = httpx.get(b.url + "/v1/usage", headers={"x-api-key": key}).json()["budget"]
        assert usage["alert_thresholds_percent"] == [50, 80, 100]
        assert usage["thresholds_reached_percent"] == [50, 80]
    finally:
        a.stop()
        b.stop()


def test_alerts_api_lists_events_recorded_without_a_webhook(gateway: Gateway, fake: FakeAnthropic):
    key = gateway.create_key("listed", budget_micros=1, budget_period="daily")
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        c.messages.create(model="claude-sonnet-4.5", max_tokens=10, messages=MSG)
    key_id = gateway.query("SELECT id FROM keys WHERE name = 'listed'")[0]["id"]
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    def listed() -> list[dict]:
        data = httpx.get(gateway.url + "/admin/api/alerts?kind=key.exhausted", headers=auth).json()["data"]
        return [e for e in data if e["payload"]["data"]["key"]["id"] == key_id]

    events = wait_for(listed, what="the exhausted event")
    assert len(events) == 1 and events[0]["deliveries"] == []  # no webhook configured: recorded, not sent
    body = httpx.get(gateway.url + "/admin/api/alerts?kind=budget.threshold", headers=auth).json()
    assert body["thresholds_percent"] == [50, 80, 100]
    mine = [e for e in body["data"] if e["payload"]["data"]["key"]["id"] == key_id]
    assert [e["payload"]["data"]["threshold_percent"] for e in mine] == [100]


@pytest.mark.postgres
def test_circuit_open_and_close_announced_once_across_instances(pg_url: str):
    """Two instances see the same deployment's circuit open and close: one event each, whoever was first."""
    import asyncio

    from orgate.config import AlertSettings
    from orgate.core.target import Target
    from orgate.observe.alerts import Alerts
    from orgate.store.alerts_repo import AlertsRepo
    from orgate.store.db import make_engine, upgrade

    upgrade(pg_url)
    target = Target(provider="anthropic", provider_type="anthropic", upstream_model=f"claude-c-{time.time_ns()}")
    label = target.label

    async def go() -> list[str]:
        engines = [make_engine(pg_url), make_engine(pg_url)]
        instances = [Alerts(AlertSettings(), AlertsRepo(e)) for e in engines]
        try:
            for state in (True, False, True):  # open, close, open again: three crossings
                await asyncio.gather(*(a._circuit(target, "open" if state else "closed") for a in instances))
            events = await instances[0].repo.events(50)
            return [e["kind"] for e in reversed(events) if orjson.loads(e["payload"])["data"].get("deployment") == label]
        finally:
            for e in engines:
                await e.dispose()

    assert asyncio.run(go()) == ["circuit.open", "circuit.closed", "circuit.open"]


@pytest.mark.parametrize("level", ["user", "team"])
def test_user_and_team_budgets_announce_their_thresholds_and_exhaustion(gateway: Gateway, fake: FakeAnthropic,
                                                                        level: str):
    """Only the user's (or the team's) budget is set: its crossings and its exhaustion are announced,
    naming that level and who, and nothing is said about the unbudgeted key."""
    tag = f"{level}{time.monotonic_ns()}"
    budget = {"budget_micros": BUDGET, "budget_period": "monthly"}
    team = gateway.create_account("team", name="t" + tag, **(budget if level == "team" else {}))
    user = gateway.create_account("user", name="u" + tag, default_team_id=team, **(budget if level == "user" else {}))
    key = gateway.create_key("k" + tag, user_id=user, team_id=team)
    ident = user if level == "user" else team
    table = level + "s"
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    fake.push(*[Reply(usage=USAGE) for _ in range(3)])
    for i in range(3):  # 27.3 %, 54.6 %, 81.9 % of the level's budget; each settles before the next
        c.messages.create(model="claude-sonnet-4.5", max_tokens=200, messages=MSG)
        wait_for(lambda n=i: gateway.query(f"SELECT spent_micros FROM {table} WHERE id = :i", i=ident)[0]
                 ["spent_micros"] == COST * (n + 1), what=f"settlement {i + 1}")
    with pytest.raises(anthropic.RateLimitError) as refused:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=200, messages=MSG)
    assert f"({level} budget)" in refused.value.message
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}

    def about(kind: str) -> list[dict]:
        data = httpx.get(gateway.url + f"/admin/api/alerts?kind={kind}", headers=auth).json()["data"]
        return [e["payload"]["data"] for e in data if e["payload"]["data"].get(level, {}).get("id") == ident]

    thresholds = wait_for(lambda: (lambda got: got if len(got) == 3 else [])(about("budget.threshold")),
                          what=f"three {level} thresholds")
    assert sorted(d["threshold_percent"] for d in thresholds) == [50, 80, 100]
    assert all(d["level"] == level and d[level]["name"] == ("u" if level == "user" else "t") + tag
               and d["budget_micros"] == BUDGET for d in thresholds)
    exhausted = wait_for(lambda: about(f"{level}.exhausted"), what=f"{level}.exhausted")
    assert len(exhausted) == 1 and exhausted[0]["spent_micros"] == 3 * COST
    key_id = gateway.query("SELECT id FROM keys WHERE name = :n", n="k" + tag)[0]["id"]
    every = httpx.get(gateway.url + "/admin/api/alerts", headers=auth).json()["data"]
    assert not [e for e in every if e["payload"]["data"].get("key", {}).get("id") == key_id]
