"""Budget leases against an in-memory store that enforces the same invariant as the SQL one."""

from __future__ import annotations

import asyncio

from orgate.governance.budget import CostBound
from orgate.governance.leases import BudgetLeases


class Store:
    """spent + reserved <= budget, exactly like the conditional UPDATE; counts its writes."""

    def __init__(self, budget: int) -> None:
        self.budget, self.spent, self.reserved, self.writes = budget, 0, 0, 0
        self.leases: dict[str, int] = {}

    async def grow_lease(self, key_id, lease_id, amount, period_start_ms):
        await asyncio.sleep(0)
        self.writes += 1
        if self.spent + self.reserved + amount > self.budget:
            return False
        self.reserved += amount
        self.leases[lease_id] = self.leases.get(lease_id, 0) + amount
        return True

    async def remaining(self, key_id, period_start_ms):
        return self.budget, self.spent, self.reserved

    def apply(self, release):
        self.spent += release.cost
        if release.lease_id in self.leases:
            self.leases[release.lease_id] -= release.released
            self.reserved -= release.released

    def give_back(self, lease_id):
        self.reserved -= self.leases.pop(lease_id, 0)


def bound(max_tokens=100):
    return CostBound(input_micros=100, output_rate=15_000_000, max_tokens=max_tokens)  # total 1,600


async def test_far_from_the_limit_requests_need_no_database_write():
    store = Store(1_000_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    tickets = [await leases.admit(1, store.budget, bound(), 0) for _ in range(30)]
    assert all(t is not None for t in tickets)
    assert store.writes == 1  # one lease of a twentieth of the budget covers 30 requests of 1,600
    for t, _ in tickets:
        store.apply(leases.settle(t, 1, 500))
    assert store.spent == 15_000 and store.spent + store.reserved <= store.budget


async def test_cap_holds_under_concurrency_and_lowers_max_tokens_near_the_limit():
    store = Store(16_000)  # ten worst cases
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    results = await asyncio.gather(*[leases.admit(1, store.budget, bound(1000), 0) for _ in range(30)])
    admitted = [r for r in results if r is not None]
    assert sum(t.bound for t, _ in admitted) <= store.budget
    assert all(mt >= 100 for _, mt in admitted)  # lowered, but never below a useful size
    assert store.spent + store.reserved <= store.budget
    for t, _ in admitted:
        store.apply(leases.settle(t, 1, t.bound))  # the worst case happened
    assert store.spent <= store.budget


async def test_idle_lease_is_given_back_and_a_new_one_is_used_next():
    store = Store(100_000)
    leases = BudgetLeases(store, "inst", hold_seconds=0)
    t, _ = await leases.admit(1, store.budget, bound(), 0)
    assert leases.idle() == []  # in flight: kept
    store.apply(leases.settle(t, 1, 700))
    returned = leases.idle()
    assert [k for k, _ in returned] == [1]
    store.give_back(returned[0][1])
    assert store.reserved == 0 and store.spent == 700
    t2, _ = await leases.admit(1, store.budget, bound(), 0)
    assert t2.lease_id != t.lease_id


async def test_exhausted_budget_is_refused():
    store = Store(1_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    assert await leases.admit(1, store.budget, bound(), 0) is None
