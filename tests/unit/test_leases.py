"""Budget leases against an in-memory store that enforces the same invariant as the SQL one, per level."""

from __future__ import annotations

import asyncio

import pytest

from orgate.governance.budget import CostBound
from orgate.governance.leases import BudgetLeases, Cap, Refused

KEY, USER, TEAM = ("key", 1), ("user", 7), ("team", 3)


class Store:
    """spent + reserved <= budget for every level, exactly like the conditional UPDATE; counts its writes."""

    def __init__(self, key_budget: int, **budgets: int) -> None:
        self.budget = {KEY: key_budget, USER: budgets.get("user", 0), TEAM: budgets.get("team", 0)}
        self.spent = dict.fromkeys(self.budget, 0)
        self.reserved = dict.fromkeys(self.budget, 0)
        self.writes = 0
        self.leases: dict[str, int] = {}

    async def grow_lease(self, ref, lease_id, amount, period_start_ms):
        await asyncio.sleep(0)
        self.writes += 1
        if self.spent[ref] + self.reserved[ref] + amount > self.budget[ref]:
            return False
        self.reserved[ref] += amount
        self.leases[lease_id] = self.leases.get(lease_id, 0) + amount
        return True

    async def remaining(self, ref, period_start_ms):
        await asyncio.sleep(0)
        return self.budget[ref], self.spent[ref], self.reserved[ref]

    def apply(self, releases):
        for r in releases:
            self.spent[r.ref] += r.cost
            if r.lease_id in self.leases:
                self.leases[r.lease_id] -= r.released
                self.reserved[r.ref] -= r.released

    def give_back(self, returned):
        for ref, lease_id in returned:
            self.reserved[ref] -= self.leases.pop(lease_id, 0)

    def caps(self, *refs):
        return [Cap(ref, self.budget[ref], 0) for ref in refs or (KEY,)]


def bound(max_tokens=100):
    return CostBound(input_micros=100, output_rate=15_000_000, max_tokens=max_tokens)  # total 1,600


async def test_far_from_the_limit_requests_need_no_database_write():
    store = Store(1_000_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    tickets = [await leases.admit(store.caps(), bound()) for _ in range(30)]
    assert not any(isinstance(t, Refused) for t in tickets)
    assert store.writes == 1  # one lease of a twentieth of the budget covers 30 requests of 1,600
    for t, _ in tickets:
        store.apply(leases.settle(t, [KEY], 500))
    assert store.spent[KEY] == 15_000 and store.spent[KEY] + store.reserved[KEY] <= store.budget[KEY]


async def test_three_levels_far_from_every_limit_need_one_write_per_level():
    store = Store(1_000_000, user=1_000_000, team=1_000_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    tickets = [await leases.admit(store.caps(KEY, USER, TEAM), bound()) for _ in range(30)]
    assert store.writes == 3
    for t, _ in tickets:
        store.apply(leases.settle(t, [KEY, USER, TEAM], 500))
    assert store.spent == {KEY: 15_000, USER: 15_000, TEAM: 15_000}


async def test_cap_holds_under_concurrency_and_lowers_max_tokens_near_the_limit():
    store = Store(16_000)  # ten worst cases
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    results = await asyncio.gather(*[leases.admit(store.caps(), bound(1000)) for _ in range(30)])
    admitted = [r for r in results if not isinstance(r, Refused)]
    assert sum(t.bound for t, _ in admitted) <= store.budget[KEY]
    assert all(mt >= 100 for _, mt in admitted)  # lowered, but never below a useful size
    assert store.spent[KEY] + store.reserved[KEY] <= store.budget[KEY]
    for t, _ in admitted:
        store.apply(leases.settle(t, [KEY], t.bound))  # the worst case happened
    assert store.spent[KEY] <= store.budget[KEY]


async def test_team_smaller_than_its_users_caps_them_and_is_named():
    store = Store(1_000_000, user=1_000_000, team=20_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    results = await asyncio.gather(*[leases.admit(store.caps(KEY, USER, TEAM), bound(1000)) for _ in range(40)])
    admitted = [r for r in results if not isinstance(r, Refused)]
    refused = [r for r in results if isinstance(r, Refused)]
    assert admitted and refused and {r.level for r in refused} == {"team"}
    assert sum(t.bound for t, _ in admitted) <= store.budget[TEAM]
    for t, _ in admitted:
        store.apply(leases.settle(t, [KEY, USER, TEAM], t.bound))
    assert store.spent[TEAM] <= store.budget[TEAM]
    assert store.spent[KEY] == store.spent[USER] == store.spent[TEAM]  # one cost, charged to every level


async def test_in_flight_never_exceeds_a_lease_while_it_grows():
    """Requests admitted in memory while another request's growth awaits the database must not push the
    in-flight sum past what the database holds."""
    store = Store(32_000, user=1_000_000, team=1_000_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    results = await asyncio.gather(*[leases.admit(store.caps(KEY, USER, TEAM), bound(1000 if i % 2 else 100))
                                     for i in range(60)])
    for ref in (KEY, USER, TEAM):
        lease = leases._leases[ref]
        assert lease.in_flight <= lease.held == store.reserved[ref] <= store.budget[ref]
    assert sum(t.bound for t in (r[0] for r in results if not isinstance(r, Refused))) <= store.budget[KEY]


async def test_a_lowered_bound_upstream_gives_back_what_the_key_level_took():
    store = Store(1_000_000, user=1_000_000, team=5_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    t, max_tokens = await leases.admit(store.caps(KEY, USER, TEAM), bound(1000))  # worst case 15,100
    assert 256 <= max_tokens < 1000 and t.bound <= 5_000
    assert all(leases._leases[ref].in_flight == t.bound for ref in (KEY, USER, TEAM))


async def test_idle_lease_is_given_back_and_a_new_one_is_used_next():
    store = Store(100_000)
    leases = BudgetLeases(store, "inst", hold_seconds=0)
    t, _ = await leases.admit(store.caps(), bound())
    assert leases.idle() == []  # in flight: kept
    store.apply(leases.settle(t, [KEY], 700))
    returned = leases.idle()
    assert [ref for ref, _ in returned] == [KEY]
    store.give_back(returned)
    assert store.reserved[KEY] == 0 and store.spent[KEY] == 700
    t2, _ = await leases.admit(store.caps(), bound())
    assert t2.parts[0][1] != t.parts[0][1]


async def test_exhausted_budget_is_refused_naming_the_level():
    store = Store(1_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    assert await leases.admit(store.caps(), bound()) == Refused("key")
    store = Store(1_000_000, user=1_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    assert await leases.admit(store.caps(KEY, USER), bound()) == Refused("user")
    assert all(lease.in_flight == 0 for lease in leases._leases.values())  # the key level's take was undone


async def test_spend_is_charged_to_uncapped_levels_too():
    store = Store(1_000_000)
    leases = BudgetLeases(store, "inst", hold_seconds=2)
    t, _ = await leases.admit(store.caps(KEY), bound())
    releases = leases.settle(t, [KEY, USER, TEAM], 900)
    assert [(r.ref, r.cost) for r in releases] == [(KEY, 900), (USER, 900), (TEAM, 900)]
    assert [r.lease_id is None for r in releases] == [False, True, True]
    assert leases.settle(None, [KEY, USER], 0) == []



def test_admission_values_stay_immutable_values() -> None:
    """Cap, Ticket, Release and CostBound are made on every request (NamedTuples since session 14, frozen
    dataclasses before): still immutable, equal and hashed by value, built by position or by name."""
    from orgate.governance.leases import Release, Ticket

    made = [(Cap, (KEY, 1000, 0), "ref"), (Ticket, (((KEY, "l1"),), 5), "bound"),
            (Release, (KEY, "l1", 3, 2), "cost"), (CostBound, (100, 15_000_000, 100), "max_tokens")]
    for cls, args, field in made:
        v = cls(*args)
        with pytest.raises(AttributeError):
            setattr(v, field, None)
        assert v == cls(*args) and hash(v) == hash(cls(*args)) and v != cls(*args[:-1], -1)
    bound = CostBound(input_micros=100, output_rate=15_000_000, max_tokens=100)
    assert bound.total == 100 + 1500 and bound.fit_max_tokens(1600) == 100 and bound.fit_max_tokens(250) is None
