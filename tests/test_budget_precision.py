"""Budget precision near the limit with 19 KB prompts on PostgreSQL: the provider's token count bounds the
input before a refusal, and a request kept out only by in-flight reservations waits for them to settle.
Sequentially and in an 80-request burst over two instances a key spends at least 95 % of its budget, and
the burst never overspends. The same runs with both features off show what they change."""

from __future__ import annotations

import concurrent.futures as cf
import time

import httpx
import orjson
import pytest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply
from tests.gateway import Gateway

BUDGET = 500_000  # $0.50
OUTPUT = 1500  # tokens each answer uses (capped by max_tokens, as the real API does)
PROMPT_BYTES = 19_000


def _prompt(i: int) -> str:
    line = f"[{i}] Please review this module and explain what each function does in detail. "
    return (line * (PROMPT_BYTES // len(line) + 1))[:PROMPT_BYTES]


def _fake() -> FakeAnthropic:
    """Bills input as the token-counting endpoint counts it (one token per 4 bytes of the request)."""
    fake = FakeAnthropic()
    fake.start()

    def script(body: dict) -> Reply:
        tokens = len(orjson.dumps(body["messages"])) // 4
        return Reply(usage={"input_tokens": tokens, "output_tokens": OUTPUT}, first_byte_delay=0.3)

    fake.default = script
    return fake


def _gateways(fake: FakeAnthropic, pg_url: str, n: int, precise: bool) -> list[Gateway]:
    env = {} if precise else {"ORGATE_BUDGETS__COUNT_TOKENS_NEAR_LIMIT": "false",
                              "ORGATE_BUDGETS__SETTLE_WAIT_SECONDS": "0"}
    return [Gateway(fake.url, database_url=pg_url, env=env).start() for _ in range(n)]


def _call(gw: Gateway, key: str, i: int) -> int:
    r = httpx.post(gw.url + "/v1/messages", timeout=60, headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                   json={"model": "claude-sonnet-4.5", "max_tokens": 4096,
                         "messages": [{"role": "user", "content": _prompt(i)}]})
    assert r.status_code in (200, 429), r.text
    return r.status_code


def _spent(gw: Gateway, name: str) -> tuple[int, int]:
    key_id = gw.query("SELECT id FROM keys WHERE name = :n", n=name)[0]["id"]
    deadline = time.time() + 15  # the ledger is written in batches; idle leases go back after the hold time
    while time.time() < deadline:
        row = gw.query("SELECT spent_micros, reserved_micros FROM keys WHERE id = :i", i=key_id)[0]
        rows = gw.query("SELECT cost_micros FROM ledger WHERE key_id = :i AND status = 200", i=key_id)
        if row["reserved_micros"] == 0 and row["spent_micros"] == sum(r["cost_micros"] for r in rows):
            return row["spent_micros"], len(rows)
        time.sleep(0.2)
    raise AssertionError(f"settlement did not finish: {row}")


@pytest.mark.postgres
@pytest.mark.parametrize("precise", [False, True], ids=["before", "after"])
def test_sequential_19kb_prompts_spend_the_budget(pg_url, precise):
    fake = _fake()
    (gw,) = _gateways(fake, pg_url, 1, precise)
    try:
        name = f"seq-{precise}"
        key = gw.create_key(name, budget_micros=BUDGET)
        statuses = []
        for i in range(40):
            statuses.append(_call(gw, key, i))
            if statuses[-1] == 429:
                break
        spent, served = _spent(gw, name)
        counts = sum(1 for r in fake.requests if r["path"].startswith("/v1/messages/count_tokens"))
        print(f"\nsequential ({'after' if precise else 'before'}): {served} served, spent {spent} of {BUDGET} "
              f"micro-USD = {spent / BUDGET:.1%}; {counts} token counts")
        assert statuses[-1] == 429 and spent <= BUDGET
        if precise:
            assert spent >= 0.95 * BUDGET
            assert counts >= 1
            assert not gw.query("SELECT 1 FROM ledger WHERE endpoint LIKE '%count%'")  # never billed
    finally:
        gw.stop()
        fake.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("precise", [False, True], ids=["before", "after"])
def test_burst_of_80_over_two_instances_spends_the_budget_and_never_more(pg_url, precise):
    fake = _fake()
    gws = _gateways(fake, pg_url, 2, precise)
    try:
        name = f"burst80-{precise}"
        key = gws[0].create_key(name, budget_micros=BUDGET)
        with cf.ThreadPoolExecutor(80) as pool:
            statuses = list(pool.map(lambda i: _call(gws[i % 2], key, i), range(80)))
        spent, served = _spent(gws[0], name)
        print(f"\nburst of 80 over 2 instances ({'after' if precise else 'before'}): {served} served, "
              f"{statuses.count(429)} refused, spent {spent} of {BUDGET} micro-USD = {spent / BUDGET:.1%}")
        assert statuses.count(200) == served and spent <= BUDGET
        if precise:
            assert spent >= 0.95 * BUDGET
    finally:
        for gw in gws:
            gw.stop()
        fake.stop()
