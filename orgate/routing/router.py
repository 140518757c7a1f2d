"""Which deployment serves a request, in what order, and what happens when one fails.

Policy:
- order: a model's deployments in configured order (`routing: ordered`), or a weighted pick
  (`routing: weighted`) that is stable per session (Claude Code's session header, `metadata.user_id`,
  OpenCode's `x-session-affinity`) so prompt-cache hits survive load balancing; then the per-request
  fallbacks. Only deployments of the route's dialect family are kept (a Claude body never goes to an
  OpenAI-compatible server, nor the reverse);
- circuit breaker: `circuit_failures` consecutive failures open a deployment's circuit for
  `circuit_cooldown_seconds`; while open it is skipped; after the cool-down exactly one request probes it
  (half-open) — success closes the circuit, failure re-opens it. If every deployment is open they are tried
  anyway: refusing outright is worse than asking a maybe-recovered provider;
- every deployment is tried once before any is retried (so `max_attempts` never hides a fallback):
  retryable failures (connection errors, timeouts, 408/409/429/5xx/529, Bedrock throttling mapped to 429,
  an `error` event before any content block) move to the next deployment at once; a deployment is retried
  after exponential backoff with full jitter, or after its `retry-after` when that is within
  `backoff_max_seconds` (a longer `retry-after` takes the deployment out of this request instead);
- 401/403/404 from a provider (its credentials, its region's model access) are the deployment's fault, not
  the request's: next deployment, no retry of the same one. Other 4xx end the request;
- nothing is retried once a byte has gone to the client: a stream is held back until its first content
  block (or error) has arrived, and the caller commits only after `open` returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from orgate.config import RoutingSettings
from orgate.core.target import Target
from orgate.dialects.anthropic.sse import AnthropicProbe
from orgate.errors import RETRYABLE_STATUSES, GatewayError, UpstreamError, status_for_kind
from orgate.routing.catalog import ModelRoute
from orgate.upstreams.base import REPAIRED_HEADER, UpstreamResponse, raise_answer

# Provider answers that disqualify the deployment but say nothing about the request.
DEPLOYMENT_STATUSES = frozenset({401, 403, 404})
PRIME_LIMIT = 1 << 20  # bytes held back at most while waiting for the first content block



class StreamProbe(Protocol):
    """Reads a stream's first chunks: True = content started (commit), False = failed before content,
    None = undecided, keep reading. `error` is the (kind, message) of the failure."""

    error: tuple[str, str] | None

    def feed(self, chunk: bytes) -> bool | None: ...


Probe = Callable[[], StreamProbe]  # a new probe per attempt


@dataclass(slots=True)
class Breaker:
    failures: int = 0
    open_until: float = 0.0
    probe_until: float = 0.0  # a half-open probe is in flight until then

    def probing(self, now: float) -> bool:
        return now < self.probe_until


@dataclass(slots=True)
class AttemptLog:
    clock: Callable[[], float] = time.monotonic
    entries: list[dict[str, object]] = field(default_factory=list)

    def add(self, target: Target, outcome: str, started: float) -> None:
        self.entries.append({"target": target.label, "provider": target.provider, "outcome": outcome,
                             "ms": int((self.clock() - started) * 1000)})


@dataclass(slots=True)
class Opened:
    response: UpstreamResponse
    target: Target
    attempts: int
    log: AttemptLog
    # A stream's chunks, the ones read while priming included (they have not reached the client yet).
    chunks: AsyncIterator[bytes] | None = None


Attempt = Callable[[Target], Awaitable[UpstreamResponse]]
# Told after each attempt: (deployment, step: first|retry|fallback, outcome: ok|http_<status>|<error kind>).
AttemptObserver = Callable[[Target, str, str], None]


def outcome_of(exc: GatewayError) -> str:
    """A bounded label for a failed attempt: the error kind, or the transport failure."""
    if exc.kind == "timeout_error":
        return "timeout"
    return "connection_error" if exc.status == 502 and exc.kind == "api_error" else exc.kind


class Router:
    """`clock` (monotonic seconds), `sleep` and `rng` are injectable so circuit cool-downs, backoff and jitter
    are tested on a fake clock without sleeping; the defaults are the real ones. Circuit state shared between
    workers (`apply`/`publish`) is in `time.monotonic` terms, so a router sharing it keeps the default clock."""

    def __init__(self, settings: RoutingSettings, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.s = settings
        self.clock, self.sleep = clock, sleep
        self.rng: Any = rng if rng is not None else random
        self.breakers: dict[str, Breaker] = {}
        # Told when a deployment's circuit opens (True) or closes (False): metrics and alerts.
        self.on_circuit: Callable[[Target, bool], None] | None = None
        # Told of every local circuit change (label, failed?) so workers of one host share circuit state
        # (server/host_state.py); `apply` takes the shared state back.
        self.publish: Callable[[str, bool], None] | None = None

    # -- order ---------------------------------------------------------------------------------------
    def order(self, route: ModelRoute, affinity: str | None, extra: list[Target] | None = None) -> list[Target]:
        if len(route.targets) == 1 and not extra:  # one deployment, no fallbacks: nothing to order or filter
            return [route.targets[0]]
        targets = list(route.targets)
        if route.entry.routing == "weighted" and len(targets) > 1:
            targets = weighted_order(targets, affinity)
        if extra:
            targets += [t for t in extra if t not in targets]
        if targets:
            family = targets[0].family
            targets = [t for t in targets if t.family == family]
        now = self.clock()
        healthy = [t for t in targets if self._closed_or_due(t.label, now)]
        return healthy + [t for t in targets if t not in healthy]

    def _closed_or_due(self, label: str, now: float) -> bool:
        b = self.breakers.get(label)
        return b is None or b.open_until == 0.0 or (now >= b.open_until and not b.probing(now))

    def _claim(self, label: str) -> bool:
        """May a request go to this deployment now? Claims the half-open probe when the cool-down is over."""
        b = self.breakers.get(label)
        if b is None or b.open_until == 0.0:
            return True
        now = self.clock()
        if now < b.open_until or b.probing(now):
            return False
        # One probe; if it never reports back (client gone) another may probe after one more cool-down.
        b.probe_until = now + max(self.s.circuit_cooldown_seconds, 1.0)
        return True

    def succeeded(self, target: Target) -> None:
        b = self.breakers.get(target.label)
        if b is not None:
            was_open = b.open_until != 0.0
            if self.publish is not None and (b.failures or b.open_until):
                self.publish(target.label, False)
            b.failures, b.open_until, b.probe_until = 0, 0.0, 0.0
            if was_open and self.on_circuit is not None:
                self.on_circuit(target, False)

    def failed(self, target: Target) -> None:
        b = self.breakers.setdefault(target.label, Breaker())
        b.failures += 1
        was_probe = b.open_until != 0.0
        b.probe_until = 0.0
        if b.failures >= self.s.circuit_failures or was_probe:
            b.open_until = self.clock() + self.s.circuit_cooldown_seconds
            if not was_probe and self.on_circuit is not None:
                self.on_circuit(target, True)
        if self.publish is not None:
            self.publish(target.label, True)

    def apply(self, label: str, failures: int, open_until: float) -> None:
        """Take a circuit's shared state (time.monotonic is one clock for every process of a host)."""
        b = self.breakers.setdefault(label, Breaker())
        b.failures, b.open_until = failures, open_until

    def state(self, label: str) -> str:
        b = self.breakers.get(label)
        if b is None or b.open_until == 0.0:
            return "closed"
        return "open" if self.clock() < b.open_until else "half-open"

    # -- attempts ------------------------------------------------------------------------------------
    def _candidates(self, targets: list[Target], out: set[str]) -> tuple[list[Target], bool]:
        """The deployments to try next, and whether their circuits are ignored (every one is open)."""
        live = [t for t in targets if t.label not in out]
        now = self.clock()
        due = [t for t in live if self._closed_or_due(t.label, now)]
        return (due, False) if due else (live, True)

    async def open(self, targets: list[Target], attempt: Attempt, *, stream: bool,
                   probe: Probe = AnthropicProbe, observe: AttemptObserver | None = None) -> Opened:
        """Try deployments until one answers; returns the first success, or raises the typed error of the
        last failure (a client error at once), carrying the attempts made."""
        log = AttemptLog(self.clock)
        budget = max(1, self.s.max_attempts, len(targets))
        out: set[str] = set()  # deployments this request will not ask again
        failures: dict[str, int] = {}
        errors: dict[str, GatewayError] = {}
        last_exc: GatewayError | None = None
        queue, forced = self._candidates(targets, out)
        skipped: set[str] = set()
        tries = 0
        while tries < budget and queue:
            target = queue.pop(0)
            if not forced and not self._claim(target.label):
                skipped.add(target.label)  # another request is probing it, or its circuit opened meanwhile
                if not queue:
                    queue, forced = self._candidates(targets, out | skipped)
                continue
            if failures.get(target.label):
                await self.sleep(self._backoff(failures[target.label], errors.get(target.label)))
            step = "retry" if failures.get(target.label) else ("fallback" if tries else "first")
            tries += 1
            started = self.clock()
            outcome, resp, exc, chunks = await self._try(target, attempt, stream, probe)
            answered = isinstance(exc, UpstreamError) and exc.answered
            if observe is not None:
                observe(target, step, "ok" if exc is None else f"http_{exc.status}" if answered else outcome_of(exc))
            if exc is None:
                assert resp is not None
                self.succeeded(target)
                if resp.headers.get(REPAIRED_HEADER):
                    log.add(target, f"HTTP 400 {resp.headers[REPAIRED_HEADER]}; retried", started)
                return Opened(resp, target, tries, log, chunks)
            log.add(target, f"HTTP {exc.status}" if answered else exc.message, started)
            if outcome == "final":  # a client error: no other deployment would answer differently
                last_exc = exc
                break
            self.failed(target)
            failures[target.label] = failures.get(target.label, 0) + 1
            last_exc = errors[target.label] = exc
            too_long = (exc.retry_after or 0) > self.s.backoff_max_seconds
            if not exc.retryable or (answered and (exc.status in DEPLOYMENT_STATUSES or too_long)):
                out.add(target.label)
            if not queue:
                queue, forced = self._candidates(targets, out)
        if last_exc is None:
            last_exc = GatewayError("no deployment is available for this model", status=503,
                                    kind="overloaded_error", retryable=True)
        last_exc.attempts, last_exc.attempt_log = tries, log.entries or None
        raise last_exc

    async def _try(self, target: Target, attempt: Attempt, stream: bool, probe: Probe
                   ) -> tuple[str, UpstreamResponse | None, GatewayError | None, AsyncIterator[bytes] | None]:
        try:
            resp = await attempt(target)
            if resp.status >= 400:  # an adapter that returned its error answer instead of raising it
                await raise_answer(resp, target.provider)
        except UpstreamError as e:
            if e.answered and e.status not in RETRYABLE_STATUSES and e.status not in DEPLOYMENT_STATUSES:
                return "final", None, e, None
            return "failed", None, e, None
        except GatewayError as e:  # transport failure: connection refused, reset, timeout
            return "failed", None, e, None
        if not stream:
            return "ok", resp, None, None
        try:
            ok, held, chunks = await _prime(resp, probe)
        except GatewayError as e:  # dropped or timed out before any content
            await resp.aclose()
            return "failed", None, e, None
        if not ok:
            await resp.aclose()
            kind, message = held.error or ("overloaded_error", "upstream error event")
            return "failed", None, UpstreamError(f"stream failed before content: {message}",
                                                 status=status_for_kind(kind), kind=kind,
                                                 provider=target.provider), None
        return "ok", resp, None, chunks

    def _backoff(self, failures: int, last: GatewayError | None) -> float:
        if last is not None and last.retry_after is not None:
            return min(last.retry_after, self.s.backoff_max_seconds)
        cap = min(self.s.backoff_max_seconds, self.s.backoff_base_seconds * (2 ** (failures - 1)))
        return float(self.rng.uniform(0, cap))


async def _prime(resp: UpstreamResponse, probe: Probe) -> tuple[bool, StreamProbe, AsyncIterator[bytes]]:
    """Read a stream until its first content (or error); the chunks read are replayed to the caller."""
    it = resp.iter_chunks().__aiter__()
    held: list[bytes] = []
    seen = 0
    reader = probe()
    verdict: bool | None = None
    while verdict is None and seen < PRIME_LIMIT:
        try:
            chunk = await it.__anext__()
        except StopAsyncIteration:
            break
        held.append(chunk)
        seen += len(chunk)
        verdict = reader.feed(chunk)

    return verdict is not False, reader, _Replay(held, it)


class _Replay:
    """The chunks read while priming, then the rest of the stream. An iterator object rather than an async
    generator: no generator frame between the relay and the response (a later chunk is the response's own
    step, returned as is), and none of the event loop's per-generator bookkeeping (a WeakSet entry)."""

    __slots__ = ("_held", "_it")

    def __init__(self, held: list[bytes], it: AsyncIterator[bytes]) -> None:
        held.reverse()  # popped from the end
        self._held = held
        self._it = it

    def __aiter__(self) -> _Replay:
        return self

    def __anext__(self) -> Awaitable[bytes]:
        if self._held:
            return _ready(self._held.pop())
        return self._it.__anext__()


async def _ready(chunk: bytes) -> bytes:
    return chunk



def weighted_order(targets: list[Target], affinity: str | None) -> list[Target]:
    """Weighted random order without replacement; the same affinity key always gives the same order."""
    rnd = random.Random(int(hashlib.sha256(affinity.encode()).hexdigest()[:16], 16)) if affinity else random
    pool = list(targets)
    out: list[Target] = []
    while pool:
        weights = [max(t.weight, 0.0) for t in pool]
        total = sum(weights)
        if total <= 0:
            weights, total = [1.0] * len(pool), float(len(pool))
        x = rnd.uniform(0, total)
        acc = 0.0
        pick = len(pool) - 1
        for i, w in enumerate(weights):
            acc += w
            if x < acc:
                pick = i
                break
        out.append(pool.pop(pick))
    return out


_weighted_order = weighted_order  # older name
