"""The one place the request flow reports to metrics, traces and alerts.

The pipeline calls these at fixed points (attempt, stream start, settlement); each turns an Exchange into
metric updates, span attributes and alert checks, so the pipeline itself holds one attribute and a few calls.
Every method is cheap when its part is off: `metrics`, `tracing` and `alerts` are None then.
"""

from __future__ import annotations

import time
from typing import Any

from orgate.errors import BudgetExhausted, GatewayError, RateLimited
from orgate.observe.metrics import Metrics
from orgate.observe.tracing import Tracing


class Observer:
    __slots__ = ("metrics", "tracing", "alerts")

    def __init__(self, metrics: Metrics | None, tracing: Tracing | None, alerts: Any = None) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.alerts = alerts  # observe.alerts.Alerts, or None without webhooks

    # -- attempts ---------------------------------------------------------------------------------------
    def attempts(self, ex: Any, extra_headers: dict[str, str]) -> tuple[Any, Any]:
        """(before, after) hooks for one request's upstream attempts: `before(target)` opens the attempt's
        span and puts its traceparent in `extra_headers`; `after(target, step, outcome)` is the router's
        observer (counts attempts, retries and fallbacks, ends failed attempts' spans)."""
        m, tracing = self.metrics, self.tracing
        last_failure: list[tuple[str, str]] = []  # (provider, outcome) of the previous failed attempt

        def before(target: Any) -> None:
            if tracing is not None:
                ex.trace = tracing.start_attempt(ex, target, extra_headers)

        def after(target: Any, step: str, outcome: str) -> None:
            if m is not None:
                m.attempt(target.provider, outcome)
                if last_failure:
                    provider, reason = last_failure[-1]
                    (m.retries if step == "retry" else m.fallbacks).labels(provider, reason).inc()
            if outcome != "ok":
                last_failure[:] = [(target.provider, outcome)]
            if tracing is not None and ex.trace is not None:
                tracing.end_attempt(ex.trace, outcome, step)
                if outcome != "ok":
                    ex.trace = None

        return before, after

    # -- admission --------------------------------------------------------------------------------------
    def clamped(self, ex: Any) -> None:
        if self.metrics is not None:
            self.metrics.clamped.labels(ex.api).inc()

    def stream_started(self, ex: Any) -> None:
        if self.metrics is not None and ex.streaming is None:
            g = self.metrics.stream_gauge(ex.api)
            g.add(1)
            ex.streaming = g

    # -- settlement -------------------------------------------------------------------------------------
    def request_done(self, ex: Any, error: GatewayError | None) -> None:
        m = self.metrics
        status = error.status if error is not None else ex.status
        if m is not None:
            if ex.streaming is not None:
                ex.streaming.add(-1)
                ex.streaming = None
            model = ex.route.public_id if ex.route is not None else ""
            provider = ex.target.provider if ex.target is not None else ""
            key = ex.key.name if m.per_key and ex.key is not None else ""
            ttfb = ex.ttft_ms / 1000 if ex.ttft_ms is not None else None
            m.request(ex.api, model, provider, status, time.monotonic() - ex.started, ttfb, key)
            if isinstance(error, BudgetExhausted):
                m.budget_refusals.labels(ex.api).inc()
            elif isinstance(error, RateLimited):
                m.rate_limited.labels(ex.api).inc()
        if isinstance(error, BudgetExhausted) and self.alerts is not None and ex.key:
            self.alerts.exhausted(ex.key, error.level)
        if self.tracing is not None:
            self.tracing.finish(ex, status, error.kind if error is not None else ex.error_type)

    def spend(self, ex: Any, cost_micros: int) -> None:
        m = self.metrics
        if m is not None and ex.route is not None:
            key = ex.key.name if m.per_key and ex.key is not None else ""
            m.spend(ex.route.public_id, ex.target.provider if ex.target is not None else "", ex.usage,
                    cost_micros, key)

    def circuit(self, target: Any, is_open: bool) -> None:
        if self.metrics is not None:
            self.metrics.circuit_changed(target.label, target.provider, is_open)
        if self.alerts is not None:
            self.alerts.circuit(target, is_open)
