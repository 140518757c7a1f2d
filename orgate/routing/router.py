"""Which deployment serves a request, in what order, and what happens when one fails.

Policy:
- order: a model's deployments in configured order (`routing: ordered`), or a weighted pick
  (`routing: weighted`) that is stable per session (Claude Code's session header, `metadata.user_id`,
  OpenCode's `x-session-affinity`) so prompt-cache hits survive load balancing;
- a deployment whose circuit is open (N consecutive failures) is skipped for a cool-down, then probed by
  one request; if every deployment is open they are tried anyway, since refusing outright is worse;
- retryable failures (connection errors, timeouts, 408/409/429/5xx/529, an `error` event before any
  content) move to the next deployment at once, or retry the same one after exponential backoff with
  full jitter, honouring `retry-after` up to `backoff_max_seconds`; at most `max_attempts` in total;
- nothing is retried once a byte has gone to the client: the caller commits only after `open` returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from orgate.config import RoutingSettings
from orgate.errors import RETRYABLE_STATUSES, GatewayError, UpstreamError
from orgate.routing.catalog import ModelRoute, Target
from orgate.upstreams.base import UpstreamResponse


@dataclass(slots=True)
class Breaker:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


@dataclass(slots=True)
class AttemptLog:
    entries: list[dict[str, object]] = field(default_factory=list)

    def add(self, target: Target, outcome: str, started: float) -> None:
        self.entries.append({"target": target.label, "outcome": outcome,
                             "ms": int((time.monotonic() - started) * 1000)})


@dataclass(slots=True)
class Opened:
    response: UpstreamResponse
    target: Target
    attempts: int
    log: AttemptLog
    # A stream's chunks, its first one already read (to catch an error event sent before any content).
    chunks: AsyncIterator[bytes] | None = None


Attempt = Callable[[Target], Awaitable[UpstreamResponse]]


class Router:
    def __init__(self, settings: RoutingSettings) -> None:
        self.s = settings
        self.breakers: dict[str, Breaker] = {}

    # -- order ---------------------------------------------------------------------------------------
    def order(self, route: ModelRoute, affinity: str | None, extra: list[Target] | None = None) -> list[Target]:
        targets = list(route.targets)
        if route.entry.routing == "weighted" and len(targets) > 1:
            targets = _weighted_order(targets, affinity)
        if extra:
            targets += [t for t in extra if t not in targets]
        now = time.monotonic()
        healthy = [t for t in targets if self._allows(t.label, now)]
        return healthy + [t for t in targets if t not in healthy]

    def _allows(self, label: str, now: float) -> bool:
        b = self.breakers.get(label)
        if b is None or b.open_until == 0.0:
            return True
        if now < b.open_until:
            return False
        if b.probing:
            return False
        b.probing = True  # half-open: one request probes the deployment
        return True

    def succeeded(self, target: Target) -> None:
        b = self.breakers.get(target.label)
        if b is not None:
            b.failures, b.open_until, b.probing = 0, 0.0, False

    def failed(self, target: Target) -> None:
        b = self.breakers.setdefault(target.label, Breaker())
        b.failures += 1
        b.probing = False
        if b.failures >= self.s.circuit_failures:
            b.open_until = time.monotonic() + self.s.circuit_cooldown_seconds

    def state(self, label: str) -> str:
        b = self.breakers.get(label)
        if b is None or b.open_until == 0.0:
            return "closed"
        return "open" if time.monotonic() < b.open_until else "half-open"

    # -- attempts ------------------------------------------------------------------------------------
    async def open(self, targets: list[Target], attempt: Attempt, *, stream: bool) -> Opened:
        """Try deployments until one answers; returns the first success or the last non-retryable answer."""
        log = AttemptLog()
        last_exc: GatewayError | None = None
        tries = 0
        max_attempts = max(1, self.s.max_attempts)
        while tries < max_attempts:
            target = targets[tries % len(targets)]
            if tries >= len(targets) or (tries > 0 and len(targets) == 1):
                await asyncio.sleep(self._backoff(tries, last_exc))
            tries += 1
            started = time.monotonic()
            try:
                resp = await attempt(target)
            except GatewayError as e:  # transport failure: connection refused, reset, timeout
                log.add(target, e.message, started)
                self.failed(target)
                last_exc = e
                if not e.retryable:
                    raise
                continue
            if resp.status < 400:
                chunks, err = None, None
                if stream:
                    try:
                        first, chunks = await _primed(resp)
                    except GatewayError as e:
                        first, err = b"event: error", e
                    if first.startswith(b"event: error"):
                        log.add(target, "stream failed before content", started)
                        self.failed(target)
                        await resp.aclose()
                        last_exc = err or UpstreamError("upstream stream failed before content", status=529)
                        continue
                self.succeeded(target)
                return Opened(resp, target, tries, log, chunks)
            if resp.status not in RETRYABLE_STATUSES or tries >= max_attempts:
                if resp.status in RETRYABLE_STATUSES:
                    self.failed(target)
                log.add(target, f"HTTP {resp.status}", started)
                return Opened(resp, target, tries, log)
            log.add(target, f"HTTP {resp.status}", started)
            self.failed(target)
            body = await resp.read()
            last_exc = UpstreamError(body.decode("utf-8", "replace")[:200], status=resp.status,
                                     retry_after=_retry_after(resp.headers), headers=resp.headers)
        assert last_exc is not None
        raise last_exc

    def _backoff(self, tries: int, last: GatewayError | None) -> float:
        if last is not None and last.retry_after is not None:
            return min(last.retry_after, self.s.backoff_max_seconds)
        cap = min(self.s.backoff_max_seconds, self.s.backoff_base_seconds * (2 ** (tries - 1)))
        return random.uniform(0, cap)


async def _primed(resp: UpstreamResponse) -> tuple[bytes, AsyncIterator[bytes]]:
    it = resp.iter_chunks()
    try:
        first = await it.__anext__()
    except StopAsyncIteration:
        first = b""

    async def chain() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in it:
            yield chunk

    return first, chain()


def _retry_after(headers: dict[str, str]) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    v = headers.get("retry-after")
    if v:
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _weighted_order(targets: list[Target], affinity: str | None) -> list[Target]:
    rnd = random.Random(int(hashlib.sha256(affinity.encode()).hexdigest()[:16], 16)) if affinity else random
    pool = list(targets)
    out: list[Target] = []
    while pool:
        total = sum(max(t.weight, 0.0) for t in pool) or float(len(pool))
        x = rnd.uniform(0, total)
        acc = 0.0
        for t in pool:
            acc += max(t.weight, 0.0) or (total / len(pool))
            if x <= acc:
                out.append(t)
                pool.remove(t)
                break
        else:
            out.append(pool.pop())
    return out
