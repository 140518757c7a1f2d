"""Prometheus metrics through `prometheus_client`: what they are, and the cheap way to update them per request.

Names and labels (the README's "Metrics" table is the operator's copy of this list):

  orgate_requests_total{surface,model,provider,status_class}          requests answered
  orgate_request_duration_seconds{surface,model,provider}             histogram, start to last byte
  orgate_time_to_first_byte_seconds{surface,model,provider}           histogram, start to first byte sent
  orgate_upstream_attempts_total{provider,outcome}                    each call to a deployment
  orgate_upstream_retries_total{provider,reason}                      the same deployment asked again
  orgate_upstream_fallbacks_total{provider,reason}                    moved on from this provider's deployment
  orgate_circuit_open{deployment,provider}                            1 while the circuit is open
  orgate_tokens_total{model,provider,class}                           input|output|cache_write_5m|cache_write_1h|cache_read
  orgate_cost_microusd_total{model,provider}                          billed cost, integer micro-USD
  orgate_budget_refusals_total{surface}, orgate_max_tokens_clamped_total{surface}
  orgate_rate_limit_refusals_total{surface}
  orgate_streams_in_flight{surface}
  orgate_ledger_queue_rows, orgate_ledger_flush_duration_seconds, orgate_ledger_flush_failures_total
  orgate_alert_deliveries_total{outcome}
  orgate_request_body_bytes_held, orgate_request_body_waits_total, orgate_request_body_overdue_total
      the body budget (server.max_buffered_body_bytes): bodies held now, requests that waited for room,
      requests let in past it after the longest wait (one worker only: read from the process at scrape)

Label values are bounded by configuration: `model` is the catalog's public id (a name the catalog does not
know is recorded as ""), `provider` a configured provider, `outcome`/`reason` an HTTP status the router treats
specially or an error kind. A `key` label (the key's name) is added only with `metrics.per_key_label`.

Cost per request: one dict lookup for the request's label tuple, then a few additions to plain numbers
(`_Pending`). prometheus_client's own updates take a lock and, for a histogram, walk its buckets in Python:
~10 of them a request cost 6.7 us, 3 % of a request's CPU. The pending numbers reach prometheus_client's
values when they are read: before /metrics renders (`exposition`), and through `_SyncFirst`, a collector
registered first, when the separate metrics port's thread scrapes (it asks the event loop to sync and
waits). So a scrape always sees every request answered before it.

Several worker processes: when PROMETHEUS_MULTIPROC_DIR is set before this module is imported, prometheus_client
keeps each value in a per-process mmap file and a scrape on any worker sums them (gauges as documented per
metric); see `multiprocess_registry`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# LLM requests last from milliseconds (errors, cache hits) to minutes (long generations).
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
TOKEN_CLASSES = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_ENV))


class _Pending:
    """One label set's per-request updates not yet given to prometheus_client: a counter's count, or a
    histogram's sum and per-bucket counts (the bucket found by bisection, as prometheus_client's loop would)."""

    __slots__ = ("child", "bounds", "direct", "count", "total", "buckets")

    def __init__(self, child: Any, bounds: tuple[float, ...] | None = None, direct: bool = False) -> None:
        self.child, self.bounds, self.direct = child, bounds, direct  # direct: pushed at every update
        self.count, self.total = 0, 0.0
        self.buckets = [0] * (len(bounds) + 1) if bounds is not None else None

    def add(self, n: int) -> None:
        self.count += n
        if self.direct:
            self.push()

    def observe(self, amount: float) -> None:
        self.count += 1
        self.total += amount
        self.buckets[bisect_left(self.bounds, amount)] += 1  # type: ignore[index,arg-type]
        if self.direct:
            self.push()

    def push(self) -> None:
        if not self.count:
            return
        if self.buckets is None:
            self.child.inc(self.count)
        else:
            # prometheus_client has no public "observe n times" for a histogram child; its values are
            # what observe() itself adds to (tests/observe/test_metrics.py checks every sample after a sync).
            self.child._sum.inc(self.total)
            for i, n in enumerate(self.buckets):
                if n:
                    self.child._buckets[i].inc(n)
                    self.buckets[i] = 0
        self.count, self.total = 0, 0.0


class _RequestSeries:
    __slots__ = ("requests", "duration", "ttfb")

    def __init__(self, requests: _Pending, duration: _Pending, ttfb: _Pending) -> None:
        self.requests, self.duration, self.ttfb = requests, duration, ttfb


class _SyncFirst:
    """Registered first in the registry: a scrape from another thread (the metrics port's server) has the
    event loop push the pending numbers before the metrics are read."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        self.metrics.sync_from_any_thread()
        return []


class _Intake:
    """The body budget's figures, read from the server at scrape time (they are the server's own counters)."""

    def __init__(self, read: Any) -> None:
        self.read = read

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        held, waited, overdue = self.read()
        return [
            GaugeMetricFamily("orgate_request_body_bytes_held", "Request body bytes held now (read, not yet "
                              "upstream), against server.max_buffered_body_bytes.", value=held),
            CounterMetricFamily("orgate_request_body_waits", "Requests that waited unread for the body budget "
                                "to have room.", value=waited),
            CounterMetricFamily("orgate_request_body_overdue", "Requests let in past the body budget after "
                                "waiting the longest wait.", value=overdue),
        ]


class Metrics:
    def __init__(self, per_key_label: bool = False) -> None:
        self.per_key = per_key_label
        r = self.registry = CollectorRegistry(auto_describe=False)
        # With several workers each update goes straight to the shared files (a scrape on one worker must
        # count every worker's requests at once); alone, updates wait in `_Pending` until read.
        self.deferred = not multiprocess()
        self.loop: asyncio.AbstractEventLoop | None = None  # set by `bind_loop` when the server starts
        self._loop_thread: int | None = None
        self._intake = False  # the body budget's collector is registered
        self._pending: list[_Pending] = []
        r.register(_SyncFirst(self))
        k = ("key",) if per_key_label else ()
        self._requests = Counter("orgate_requests", "Requests answered, by surface, model, provider, status class.",
                                 ("surface", "model", "provider", "status_class", *k), registry=r)
        self._duration = Histogram("orgate_request_duration_seconds", "From request start to the last byte sent.",
                                   ("surface", "model", "provider"), buckets=DURATION_BUCKETS, registry=r)
        self._ttfb = Histogram("orgate_time_to_first_byte_seconds",
                               "From request start to the first response byte sent to the client.",
                               ("surface", "model", "provider"), buckets=TTFB_BUCKETS, registry=r)
        self.attempts = Counter("orgate_upstream_attempts", "Calls to a deployment, by outcome (ok or why not).",
                                ("provider", "outcome"), registry=r)
        self.retries = Counter("orgate_upstream_retries", "A deployment asked again after it failed, by reason.",
                               ("provider", "reason"), registry=r)
        self.fallbacks = Counter("orgate_upstream_fallbacks",
                                 "Requests moved from this provider's deployment to another, by reason.",
                                 ("provider", "reason"), registry=r)
        self.circuit = Gauge("orgate_circuit_open", "1 while the deployment's circuit breaker is open (any worker).",
                             ("deployment", "provider"), registry=r, multiprocess_mode="livemax")
        self._tokens = Counter("orgate_tokens", "Tokens billed, by class.", ("model", "provider", "class", *k),
                               registry=r)
        self._cost = Counter("orgate_cost_microusd", "Cost billed in micro-USD (1e-6 USD).",
                             ("model", "provider", *k), registry=r)
        self.budget_refusals = Counter("orgate_budget_refusals", "Requests refused because the key's budget "
                                       "cannot cover them.", ("surface",), registry=r)
        self.clamped = Counter("orgate_max_tokens_clamped", "Requests whose max_tokens was lowered to fit the "
                               "remaining budget.", ("surface",), registry=r)
        self.rate_limited = Counter("orgate_rate_limit_refusals", "Requests refused by a key's RPM/TPM/concurrency "
                                    "limit.", ("surface",), registry=r)
        self.streams = Gauge("orgate_streams_in_flight", "Streaming responses being relayed now.", ("surface",),
                             registry=r, multiprocess_mode="livesum")
        self.ledger_queue = Gauge("orgate_ledger_queue_rows", "Ledger rows waiting for the next flush.",
                                  registry=r, multiprocess_mode="livesum")
        self.flush_duration = Histogram("orgate_ledger_flush_duration_seconds", "Ledger flush transactions.",
                                        buckets=FLUSH_BUCKETS, registry=r)
        self.flush_failures = Counter("orgate_ledger_flush_failures", "Ledger flushes that failed (rows kept for "
                                      "the next try).", registry=r)
        self.alert_deliveries = Counter("orgate_alert_deliveries", "Webhook delivery attempts, by outcome.",
                                        ("outcome",), registry=r)
        self._series: dict[tuple[str, ...], _RequestSeries] = {}
        self._spend: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._streams: dict[str, Any] = {}
        self._attempts: dict[tuple[str, str], Any] = {}

    # -- per request (hot path) -------------------------------------------------------------------------
    def _child(self, child: Any, bounds: tuple[float, ...] | None = None) -> _Pending:
        """What the hot path updates for one label set (pushed at once when not deferred)."""
        p = _Pending(child, bounds, direct=not self.deferred)
        self._pending.append(p)
        return p

    def request(self, surface: str, model: str, provider: str, status: int, seconds: float,
                ttfb_seconds: float | None, key: str = "") -> None:
        cls = STATUS_CLASS.get(status // 100, "5xx")
        ident = (surface, model, provider, cls, key) if self.per_key else (surface, model, provider, cls)
        s = self._series.get(ident)
        if s is None:
            s = self._series[ident] = _RequestSeries(
                self._child(self._requests.labels(*ident)),
                self._child(self._duration.labels(surface, model, provider), DURATION_BUCKETS),
                self._child(self._ttfb.labels(surface, model, provider), TTFB_BUCKETS))
        s.requests.add(1)
        s.duration.observe(seconds)
        if ttfb_seconds is not None:
            s.ttfb.observe(ttfb_seconds)

    def spend(self, model: str, provider: str, usage: Any, cost_micros: int, key: str = "") -> None:
        ident = (model, provider, key) if self.per_key else (model, provider)
        c = self._spend.get(ident)
        if c is None:
            extra = (key,) if self.per_key else ()
            c = self._spend[ident] = (*(self._child(self._tokens.labels(model, provider, t, *extra))
                                        for t in TOKEN_CLASSES), self._child(self._cost.labels(*ident)))
        for child, n in zip(c, (usage.input_tokens, usage.output_tokens, usage.cache_write_5m_tokens,
                                usage.cache_write_1h_tokens, usage.cache_read_tokens, cost_micros), strict=True):
            if n:
                child.add(n)

    def attempt(self, provider: str, outcome: str) -> None:
        c = self._attempts.get((provider, outcome))
        if c is None:
            c = self._attempts[(provider, outcome)] = self._child(self.attempts.labels(provider, outcome))
        c.add(1)

    # -- reading ----------------------------------------------------------------------------------------
    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._loop_thread = threading.get_ident()

    def watch_intake(self, read: Any) -> None:
        """Show the server's body budget: `read()` gives (bytes held, waits, overdue). Alone only: with several
        workers a scrape reaches one of them, and these are not summed across workers."""
        if not multiprocess() and not self._intake:
            self._intake = True
            self.registry.register(_Intake(read))

    def sync(self) -> None:
        """Give every pending number to prometheus_client (on the event loop's thread, which updates them)."""
        for p in self._pending:
            p.push()

    def sync_from_any_thread(self) -> None:
        loop = self.loop
        if loop is None or threading.get_ident() == self._loop_thread or loop.is_closed():
            self.sync()  # no loop yet (or gone), or already on it
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                self.sync()
            finally:
                done.set_result(None)

        try:
            loop.call_soon_threadsafe(run)
            done.result(timeout=2)
        except (RuntimeError, concurrent.futures.TimeoutError):
            pass  # the loop is stopping or stuck: serve what prometheus_client has

    def stream_gauge(self, surface: str) -> _Pending:
        """What a stream adds 1 to when it starts and -1 when it ends: pending like a counter (the gauge's
        own inc and dec each take its lock), pushed as the net change when read."""
        g = self._streams.get(surface)
        if g is None:
            g = self._streams[surface] = self._child(self.streams.labels(surface))
        return g

    # -- everything else --------------------------------------------------------------------------------
    def circuit_changed(self, deployment: str, provider: str, is_open: bool) -> None:
        self.circuit.labels(deployment, provider).set(1 if is_open else 0)

    def ledger_flushed(self, seconds: float, ok: bool, waiting: int) -> None:
        self.flush_duration.observe(seconds)
        if not ok:
            self.flush_failures.inc()
        self.ledger_queue.set(waiting)

    def exposition(self) -> bytes:
        self.sync()
        return generate_latest(multiprocess_registry() if multiprocess() else self.registry)


def multiprocess_registry() -> CollectorRegistry:
    """A scrape-time registry that sums every worker's values from PROMETHEUS_MULTIPROC_DIR."""
    from prometheus_client import multiprocess as mp

    registry = CollectorRegistry()
    mp.MultiProcessCollector(registry)
    return registry


def worker_exited(pid: int) -> None:
    """For a supervisor of several workers: drop a dead worker's live gauges (its counters stay counted)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)
