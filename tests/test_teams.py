"""Users and teams above keys: three hard caps, the allowlist intersection, and cutting a user or team off,
through real orgate processes on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures as cf
import tempfile
import time
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply
from tests.gateway import Gateway

MSG = [{"role": "user", "content": "hi"}]
HEADERS = {"anthropic-version": "2023-06-01"}
ACTUAL = 50 * 3 + 100 * 15  # claude-sonnet-4.5, 50 in / 100 out: 1,650 micro-USD per request


@pytest.fixture(params=["sqlite", "postgres"])
def shared_db(request):
    if request.param == "sqlite":
        yield f"sqlite:///{Path(tempfile.mkdtemp()) / 'shared.db'}"
    else:
        yield request.getfixturevalue("pg_url")


def _settled(gw: Gateway, table: str, ident: int, timeout: float = 15) -> dict:
    """The level's row once every lease went back (lease_hold_seconds after the last request)."""
    deadline = time.time() + timeout
    while True:
        row = gw.query(f"SELECT spent_micros, reserved_micros, budget_micros FROM {table} WHERE id = :i", i=ident)[0]
        if row["reserved_micros"] == 0 or time.time() > deadline:
            return row
        time.sleep(0.1)


def test_team_budget_holds_over_two_instances_and_sixty_requests(shared_db):
    """Two users in one team; the team's budget is smaller than the sum of theirs. 60 concurrent requests
    over two instances: the team's spend stays within its budget, every level's spend equals its ledger
    rows, and the refusals name the team."""
    fake = FakeAnthropic()
    fake.start()
    fake.default = Reply(usage={"input_tokens": 50, "output_tokens": 100}, first_byte_delay=0.2)
    team_budget = 12 * ACTUAL
    user_budget = 11 * ACTUAL  # two of them: 22 > 12
    gws = [Gateway(fake.url, database_url=shared_db).start() for _ in range(2)]
    try:
        team = gws[0].create_account("team", name="platform-" + str(time.monotonic_ns()), budget_micros=team_budget)
        users = [gws[0].create_account("user", name=f"u{i}", budget_micros=user_budget, default_team_id=team)
                 for i in range(2)]
        keys = [gws[0].create_key(f"k{i}", user_id=u, team_id=team) for i, u in enumerate(users)]

        def call(i: int) -> tuple[int, str, dict[str, str]]:
            r = httpx.post(gws[i % 2].url + "/v1/messages", timeout=30, headers={**HEADERS, "x-api-key": keys[i // 2 % 2]},
                           json={"model": "claude-sonnet-4.5", "max_tokens": 100, "messages": MSG})
            return r.status_code, r.text, dict(r.headers)

        with cf.ThreadPoolExecutor(60) as pool:
            results = list(pool.map(call, range(60)))
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 429]
        assert len(ok) + len(refused) == 60 and ok and refused, sorted(r[0] for r in results)
        assert all(h["x-should-retry"] == "false" for _, _, h in refused)
        assert all("team budget" in body and "enforced_spend_limit_reached" in body for _, body, _ in refused)
        rows = gws[0].ledger(len(ok), status=200, team_id=team)
        assert len(rows) == len(ok)
        print(f"three-level burst: {len(ok)} served, {len(refused)} refused, team spent "
              f"{sum(r['cost_micros'] for r in rows)} of {team_budget}")
        for table, ident, col in [("teams", team, "team_id"), *[("users", u, "user_id") for u in users]]:
            row = _settled(gws[0], table, ident)
            ledger_sum = sum(r["cost_micros"] for r in gws[0].query(f"SELECT cost_micros FROM ledger WHERE {col} = :i",
                                                                     i=ident))
            assert row["spent_micros"] == ledger_sum and row["reserved_micros"] == 0, (table, row, ledger_sum)
            assert row["spent_micros"] <= row["budget_micros"]
        assert sum(r["cost_micros"] for r in rows) <= team_budget
        key_ids = [r["key_id"] for r in gws[0].query("SELECT id AS key_id FROM keys WHERE team_id = :t", t=team)]
        for key_id in key_ids:
            spent = gws[0].query("SELECT spent_micros FROM keys WHERE id = :i", i=key_id)[0]["spent_micros"]
            assert spent == sum(r["cost_micros"] for r in gws[0].query(
                "SELECT cost_micros FROM ledger WHERE key_id = :i", i=key_id))
        assert {r["user_id"] for r in rows} <= set(users)
    finally:
        for gw in gws:
            gw.stop()
        fake.stop()


def _three_levels(gw: Gateway, **per_level) -> tuple[str, int, int]:
    """A key under a user under a team; per_level: {"key"|"user"|"team": {field: value}}."""
    tag = str(time.monotonic_ns())
    team = gw.create_account("team", name="t" + tag, **per_level.get("team", {}))
    user = gw.create_account("user", name="u" + tag, default_team_id=team, **per_level.get("user", {}))
    key = gw.create_key("k" + tag, user_id=user, team_id=team, **per_level.get("key", {}))
    return key, user, team


@pytest.mark.parametrize("level", ["key", "user", "team"])
def test_each_level_exhausted_alone_refuses_naming_it(gateway, fake, level):
    big = {"budget_micros": 10_000_000}
    spec = {lv: dict(big) for lv in ("key", "user", "team")}
    spec[level] = {"budget_micros": 50}  # not even the input of one request (~100 bytes at $1/MTok)
    key, _, _ = _three_levels(gateway, **spec)
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as e:
        c.messages.create(model="claude-haiku-4.5", max_tokens=100, messages=MSG)
    assert f"({level} budget)" in e.value.message
    assert e.value.response.headers["x-should-retry"] == "false"
    # the same structure with every level funded is served
    ok_key, _, _ = _three_levels(gateway, **{lv: dict(big) for lv in ("key", "user", "team")})
    anthropic.Anthropic(base_url=gateway.url, api_key=ok_key, max_retries=0).messages.create(
        model="claude-haiku-4.5", max_tokens=100, messages=MSG)


@pytest.mark.parametrize("level", ["key", "user", "team"])
def test_each_level_allowlist_alone_narrows_models(gateway, fake, level):
    key, _, _ = _three_levels(gateway, **{level: {"allowed_models": ["claude-haiku-4.5"]}})
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    assert [m.id for m in c.models.list()] == ["claude-haiku-4.5"]
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        c.messages.create(model="claude-sonnet-4.5", max_tokens=10, messages=MSG)
    assert ("API key is" if level == "key" else f"{level} '") in e.value.message
    c.messages.create(model="claude-haiku-4.5", max_tokens=10, messages=MSG)
    free, _, _ = _three_levels(gateway)
    everything = [m.id for m in anthropic.Anthropic(base_url=gateway.url, api_key=free).models.list(limit=1000)]
    assert len(everything) > 1 and "claude-sonnet-4.5" in everything


def test_allowlists_intersect(gateway, fake):
    key, _, _ = _three_levels(gateway, key={"allowed_models": ["claude-haiku-4.5", "claude-sonnet-4.5"]},
                              user={"allowed_models": ["claude-sonnet-4.5", "claude-opus-4.8"]},
                              team={"allowed_models": ["claude-sonnet-4.5", "claude-haiku-4.5"]})
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    assert [m.id for m in c.models.list()] == ["claude-sonnet-4.5"]


@pytest.mark.parametrize("level", ["user", "team"])
def test_disabling_a_user_or_team_cuts_its_keys_within_a_second(gateway, fake, level):
    key, user, team = _three_levels(gateway)
    c = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    c.messages.create(model="claude-haiku-4.5", max_tokens=10, messages=MSG)  # cached as usable
    gateway.update_account(level, user if level == "user" else team, status="disabled")  # as another process
    deadline = time.time() + 3
    while True:
        try:
            c.messages.create(model="claude-haiku-4.5", max_tokens=10, messages=MSG)
        except anthropic.PermissionDeniedError as e:
            assert f"{level} " in e.message and "disabled" in e.message
            assert e.response.headers["x-should-retry"] == "false"
            break
        assert time.time() < deadline, "still served 3 s after the disable"
        time.sleep(0.05)


@pytest.mark.parametrize("level", ["user", "team"])
def test_user_or_team_rpm_is_shared_by_its_keys(gateway, fake, level):
    tag = str(time.monotonic_ns())
    team = gateway.create_account("team", name="t" + tag, **({"rpm": 2} if level == "team" else {}))
    user = gateway.create_account("user", name="u" + tag, default_team_id=team, **({"rpm": 2} if level == "user" else {}))
    keys = [gateway.create_key(f"k{i}{tag}", user_id=user, team_id=team) for i in range(2)]
    clients = [anthropic.Anthropic(base_url=gateway.url, api_key=k, max_retries=0) for k in keys]
    statuses = []
    for c in (clients[0], clients[1], clients[0]):  # two keys, one shared limit of 2 a minute
        try:
            c.messages.create(model="claude-haiku-4.5", max_tokens=10, messages=MSG)
            statuses.append(200)
        except anthropic.RateLimitError as e:
            statuses.append(429)
            assert f"{level} 't{tag}'" in e.message or f"{level} 'u{tag}'" in e.message
            assert e.response.headers["x-should-retry"] == "true" and "retry-after" in e.response.headers
    # a minute boundary between the calls would reset the window: then all three may pass
    assert statuses == [200, 200, 429] or statuses == [200, 200, 200] and time.time() % 60 < 5, statuses
