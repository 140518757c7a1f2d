"""Per-request metric updates wait as plain numbers (observe/metrics.py `_Pending`) until read; what a scrape
then shows is exactly what prometheus_client's own updates would have shown."""

from __future__ import annotations

import asyncio
import threading

from prometheus_client import generate_latest

from orgate.core.usage import Usage
from orgate.observe.metrics import DURATION_BUCKETS, TTFB_BUCKETS, Metrics

# Every bucket bound itself (observe() puts a value equal to a bound in that bucket), values between,
# below the first, past the last (+Inf), and zero.
SECONDS = [0.0, 0.001, *DURATION_BUCKETS, *TTFB_BUCKETS, *(b * 1.5 for b in DURATION_BUCKETS), 1e6]


def _drive(m: Metrics) -> None:
    u = Usage()
    u.input_tokens, u.output_tokens, u.cache_read_tokens = 25, 100, 7
    for i, s in enumerate(SECONDS):
        m.request("anthropic", "claude-sonnet-4-5", "anthropic", (200, 429, 529)[i % 3], s,
                  s / 2 if i % 4 else None, "")
        m.spend("claude-sonnet-4-5", "anthropic", u, 1575 + i)
        m.attempt("anthropic", "ok" if i % 5 else "http_529")


def _samples(text: bytes) -> list[bytes]:
    """The exposition without its `_created` timestamps (two registries are never created at once)."""
    return [ln for ln in text.splitlines() if b"_created" not in ln]


def test_deferred_scrape_equals_direct_updates() -> None:
    direct, deferred = Metrics(), Metrics()
    direct.deferred = False  # prometheus_client's own updates, as with several workers
    assert deferred.deferred
    _drive(direct)
    _drive(deferred)
    assert _samples(deferred.exposition()) == _samples(direct.exposition())
    _drive(direct)  # a second round after a sync adds to what was pushed
    _drive(deferred)
    assert _samples(deferred.exposition()) == _samples(direct.exposition())


def test_nothing_is_pushed_twice() -> None:
    m = Metrics()
    _drive(m)
    first = m.exposition()
    m.sync()
    assert m.exposition() == first


def test_a_scrape_from_another_thread_sees_the_loops_pending_updates() -> None:
    """The metrics port's server reads the registry in its own thread: it has the loop sync first."""
    m = Metrics()
    seen: list[bytes] = []

    async def main() -> None:
        m.bind_loop(asyncio.get_running_loop())
        _drive(m)
        t = threading.Thread(target=lambda: seen.append(generate_latest(m.registry)))
        t.start()
        while t.is_alive():
            await asyncio.sleep(0.01)  # the loop runs the sync the thread asked for

    asyncio.run(main())
    want = Metrics()
    want.deferred = False
    _drive(want)
    assert len(seen) == 1 and _samples(seen[0]) == _samples(want.exposition())


def _streams(m: Metrics) -> float:
    for line in m.exposition().splitlines():
        if line.startswith(b'orgate_streams_in_flight{surface="anthropic"}'):
            return float(line.split()[-1])
    return 0.0


def test_streams_in_flight_is_exact_at_every_scrape() -> None:
    """The gauge's +1 and -1 wait as a net change (no lock per stream) and a scrape shows exactly the streams
    open then, as the gauge's own inc and dec did; with several workers (not deferred) each goes straight in."""
    for deferred in (True, False):
        m = Metrics()
        m.deferred = deferred
        a, b = m.stream_gauge("anthropic"), m.stream_gauge("anthropic")
        assert a is b
        a.add(1)
        assert _streams(m) == 1
        b.add(1)
        a.add(-1)
        assert _streams(m) == 1
        b.add(-1)
        b.add(1)
        b.add(-1)  # opened and closed between two scrapes: nothing to push
        assert _streams(m) == 0
        a.add(1)
        if not deferred:
            assert m.streams.labels("anthropic")._value.get() == 1  # pushed at once
