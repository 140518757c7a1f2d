"""A route of one deployment (the usual case) and the derived fields of a Target: the router's shortcuts give
exactly what the general way gives."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest

from orgate.config import RoutingSettings
from orgate.core.target import Target
from orgate.routing.router import Router


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def route(*targets: Target) -> SimpleNamespace:
    return SimpleNamespace(targets=tuple(targets), entry=SimpleNamespace(routing="ordered"))


def general_candidates(router: Router, targets: list[Target], out: set[str]) -> tuple[list[Target], bool]:
    live = [t for t in targets if t.label not in out]
    due = [t for t in live if router._closed_or_due(t.label, router.clock())]
    return (due, False) if due else (live, True)


def test_target_label_and_family_are_derived_once_and_outside_equality():
    t = Target("anthropic", "anthropic", "claude-x", 2.0)
    assert (t.label, t.family) == ("anthropic/claude-x", "claude")
    assert Target("o", "openai_compatible", "m").family == "openai"
    assert t == Target("anthropic", "anthropic", "claude-x", 2.0) and hash(t) == hash(Target("anthropic", "anthropic", "claude-x", 2.0))
    assert repr(t) == "Target(provider='anthropic', provider_type='anthropic', upstream_model='claude-x', weight=2.0)"
    assert pickle.loads(pickle.dumps(t)).label == "anthropic/claude-x"
    with pytest.raises(AttributeError):
        t.label = "x"  # type: ignore[misc]


@pytest.mark.parametrize("state", ["closed", "open", "half-open", "probing"])
def test_one_deployment_order_and_candidates_match_the_general_way(state):
    clock = Clock()
    router = Router(RoutingSettings(circuit_failures=1, circuit_cooldown_seconds=30), clock=clock)
    t = Target("anthropic", "anthropic", "claude-x")
    if state != "closed":
        router.failed(t)  # open
    if state in ("half-open", "probing"):
        clock.t += 31
    if state == "probing":
        assert router._claim(t.label)
    assert router.order(route(t), None) == [t]
    for out in (set(), {t.label}):
        assert router._candidates([t], out) == general_candidates(router, [t], out)
    # with fallbacks the general way runs
    u = Target("vertex", "vertex", "claude-x")
    assert router.order(route(t), None, [u]) in ([t, u], [u, t])
