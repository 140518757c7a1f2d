"""The one use case every surface shares: auth -> limits -> budget reserve -> route -> call -> settle -> record.

`Pipeline.serve(client, plan)` runs every request (messages, count_tokens, chat completions, responses, the
OpenAI relay) from its body to its settled ledger row and access line; surfaces (server/*) only parse, pick
a plan (pipeline/flow.py) and render their dialect. So a request on any route is admitted, billed, recorded,
cancelled and answered with an error by the same code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from orgate.config import Settings
from orgate.core.target import Target
from orgate.core.usage import Usage
from orgate.errors import GatewayError, InternalError, InvalidRequest, UpstreamError, credentials_rejected
from orgate.governance import budget
from orgate.governance.admission import Admission
from orgate.governance.keys import KeyRecord, budget_exhausted, now_ms, unknown_model
from orgate.governance.leases import BudgetLeases, Cap, Refused, Ticket
from orgate.governance.limits import Limiter
from orgate.governance.pricing import PriceBook
from orgate.observe.hooks import Observer
from orgate.pipeline.flow import Client, Plan
from orgate.pipeline.watch import ClientGone, Watched
from orgate.routing.catalog import Catalog, ModelRoute
from orgate.routing.router import Opened, Router
from orgate.store.budget_repo import BudgetRepo
from orgate.store.outage import unavailable
from orgate.store.writer import LedgerWriter
from orgate.upstreams.base import ClaudeUpstream, UpstreamCall
from orgate.upstreams.openai_compat import OpenAICompatUpstream, chat_body


@dataclass(slots=True)
class Exchange:
    """Everything known about one request, for settlement and the ledger row."""

    request_id: str
    api: str
    endpoint: str = "messages"
    key: KeyRecord | None = None
    model: str | None = None
    route: ModelRoute | None = None
    target: Target | None = None
    stream: bool = False
    started: float = field(default_factory=time.monotonic)
    ttft_ms: int | None = None
    usage: Usage = field(default_factory=Usage)
    status: int = 200
    error_type: str | None = None
    attempts: int = 0
    attempt_log: list[dict[str, Any]] | None = None
    ticket: Ticket | None = None  # this request's share of the budget leases of its key, user and team
    prompt: bytes | None = None  # the request body, kept only when the operator turned prompt logging on
    disconnected: bool = False
    settled: bool = False
    concurrency_held: bool = False
    trace: Any = None  # the current upstream attempt's span, when tracing is on
    streaming: Any = None  # the in-flight-streams gauge this request incremented, when metrics are on

    def first_byte(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = int((time.monotonic() - self.started) * 1000)


# What POST /v1/messages/count_tokens takes (api-reference §A.13); everything else in a Messages body is refused.
COUNTED_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                            "cache_control"})
COUNT_TIMEOUT = 5.0


def provider_error(e: GatewayError) -> GatewayError:
    """The error a client gets for the router's last failure: the provider's own, except a provider's
    401/403, which is about the gateway's credentials (errors.credentials_rejected)."""
    if isinstance(e, UpstreamError) and e.answered and e.status in (401, 403):
        return credentials_rejected(e)
    return e


class Pipeline:
    def __init__(self, settings: Settings, catalog: Catalog, router: Router,
                 upstreams: dict[str, ClaudeUpstream], budgets: BudgetRepo, writer: LedgerWriter,
                 limiter: Limiter | None = None, leases: BudgetLeases | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.router = router
        self.upstreams = upstreams
        self.budgets = budgets
        self.writer = writer
        self.limiter = limiter or Limiter()
        self.prices = PriceBook(settings.models)
        self.leases = leases or BudgetLeases(budgets, budgets.instance_id, settings.budgets.lease_hold_seconds)
        self.admission = Admission(self.leases, settings.budgets.settle_wait_seconds,
                                   settings.budgets.count_tokens_near_limit)
        self._tasks: set[asyncio.Task[Any]] = set()  # counter updates in flight (kept referenced)
        self.observer: Observer | None = None  # metrics, traces, alerts (set by the composition root)
        # Set by the composition root: key lookup (KeyAuth) and the access line's writer (logs.AccessLog).
        self.auth: Any = None
        self.access: Any = None
        self.watched: Watched | None = None  # the server's disconnect watching (server/asgi.watched)
        self.log = logging.getLogger("orgate")

    # -- the request flow ----------------------------------------------------------------------------
    async def serve(self, client: Client, plan: Plan) -> None:
        """Run one request to its settled ledger row (flow.py draws the order). Whatever ends it goes through
        the one `finally`: the error rendered once if nothing was sent, settlement, the access line."""
        ex = Exchange(client.request_id, api=plan.api, endpoint=plan.endpoint)
        error: GatewayError | None = None
        try:
            raw = await client.read_body(self.settings.server.max_body_bytes)
            if self.settings.server.log_prompts:
                ex.prompt = raw
            assert self.watched is not None
            held = [raw]  # handed to _run, not kept in this frame: _run lets go of it once the request is upstream
            del raw
            if await self.watched(client, lambda: self._run(ex, client, plan, held.pop())):
                ex.disconnected = True  # the upstream was closed; usage seen so far is billed
        except GatewayError as e:
            error = e
        except ClientGone:
            ex.disconnected = True
        except asyncio.CancelledError:
            ex.disconnected = True
            raise
        except Exception as e:
            self.log.exception("unexpected error in %s", ex.endpoint, extra={"request_id": ex.request_id})
            error = unavailable(e) or InternalError("Internal server error.")
        finally:
            if error is not None and ex.ttft_ms is None:
                await plan.reply_error(error)
            self.finish(ex, error)
            if self.access is not None:
                self.access.write(ex, error)

    async def _run(self, ex: Exchange, client: Client, plan: Plan, raw: bytes) -> None:
        # The key was checked before the body was read (server/preauth.py); its record is used as found then
        # (a second lookup found the same cached record, hashing the key again).
        ex.key = client.key or await self.auth.authenticate(client.headers)
        plan = await plan.parse(ex, raw)
        if plan.limited:
            await self.limit(ex)
        budget = await plan.prepare(ex, raw)
        allowed = await self.reserve(ex, budget.raw, budget.max_tokens, budget.body) if budget else None
        opened = await plan.open(ex, allowed)
        # The request is upstream and no retry can use its body any more: let it go, so that a stream that
        # lasts minutes does not hold its prompt (150 KB to megabytes) for all that time.
        raw = budget = None  # type: ignore[assignment]
        client.release_body()
        plan.release()
        await (plan.relay(ex, opened) if ex.stream else plan.answer(ex, opened))

    # -- admission -----------------------------------------------------------------------------------
    def resolve(self, ex: Exchange, model: Any) -> ModelRoute:
        if not isinstance(model, str) or not model:
            raise InvalidRequest("model: field required (a string)", param="model")
        ex.model = model
        route = self.catalog.resolve(model)
        if route is None:
            raise unknown_model(model)
        assert ex.key is not None
        ex.key.check_model(route.public_id, model, route.aliases)
        ex.route = route
        return route

    async def limit(self, ex: Exchange) -> None:
        key = ex.key
        assert key is not None
        if not self.limiter.limited(key):
            return
        # Marked before the check: if it is cancelled (client gone) or Redis stalls after taking the slot,
        # finish() still releases it (a release of a slot never taken is a no-op).
        ex.concurrency_held = bool(key.max_concurrency)
        await self.limiter.acquire(key, ex.request_id)  # raises RateLimited

    async def reserve(self, ex: Exchange, raw: bytes, max_tokens: int, body: dict[str, Any] | None = None) -> int:
        """Hold the worst-case cost against the budget of the key, its user and its team; returns the
        max_tokens to send (lowered near a limit so the worst case fits). Raises BudgetExhausted, naming the
        level, when nothing useful fits. `body` is the Anthropic request when `raw` is another dialect's:
        near a limit its input tokens are counted by the provider (governance/admission.py)."""
        key, route = ex.key, ex.route
        assert key is not None and route is not None
        if not key.capped:
            return max_tokens
        caps = [Cap((x.level, x.id), x.budget_micros, budget.period_start(x.budget_period))  # type: ignore[arg-type]
                for x in key.capped]
        admitted = await self.admission.admit(caps, raw, max_tokens, self.prices[route.public_id],
                                              lambda: self.count_input_tokens(route, raw, body))
        if isinstance(admitted, Refused):
            raise budget_exhausted(key, admitted.level)
        ex.ticket, allowed = admitted
        if allowed != max_tokens and self.observer is not None:
            self.observer.clamped(ex)
        return allowed

    async def count_input_tokens(self, route: ModelRoute, raw: bytes, body: dict[str, Any] | None) -> int | None:
        """The provider's count of the request's input tokens (free, never billed), or None if it has none."""
        target = route.targets[0] if route.targets else None
        up = self.upstreams.get(target.provider) if target else None
        if up is None or target is None:
            return None
        try:
            full = body if body is not None else orjson.loads(raw)
            counted = {k: v for k, v in full.items() if k in COUNTED_FIELDS}
            call = UpstreamCall(target=target, body=counted, stream=False)
            async with asyncio.timeout(COUNT_TIMEOUT):
                resp = await up.count_tokens(call)
                data = await resp.read()
            tokens = orjson.loads(data).get("input_tokens") if resp.status == 200 else None
        except Exception:  # counting is an optimisation: any failure falls back to the byte bound
            return None
        return tokens if isinstance(tokens, int) and tokens >= 0 else None

    # -- upstream ------------------------------------------------------------------------------------
    async def open(self, ex: Exchange, call: UpstreamCall, affinity: str | None,
                   fallbacks: list[Target] | None = None, *, count_tokens: bool = False) -> Opened:
        assert ex.route is not None
        targets = self.router.order(ex.route, affinity, fallbacks)
        before, after = self.observer.attempts(ex, call.extra_headers) if self.observer else (None, None)

        async def attempt(target: Target):  # type: ignore[no-untyped-def]
            if before is not None:
                before(target)
            up = self.upstreams.get(target.provider)
            if up is None:
                raise GatewayError(f"provider '{target.provider}' is not available", status=503, retryable=True)
            call.target = target
            return await (up.count_tokens(call) if count_tokens else up.messages(call))

        try:
            opened = await self.router.open(targets, attempt, stream=call.stream, observe=after)
        except GatewayError as e:
            ex.attempts, ex.attempt_log = e.attempts, e.attempt_log
            raise provider_error(e) from None
        ex.target, ex.attempts = opened.target, opened.attempts
        ex.attempt_log = opened.log.entries or None
        if call.stream and opened.chunks is not None and self.observer is not None:
            self.observer.stream_started(ex)
        return opened

    async def open_relay(self, ex: Exchange, body: dict[str, Any], affinity: str | None,
                         fallbacks: list[Target] | None, probe: Any) -> Opened:
        """The OpenAI relay's call: the client's chat body to OpenAI-compatible deployments, routed, retried
        and logged like every other request's (a request whose every deployment failed keeps its attempts)."""
        assert ex.route is not None
        targets = self.router.order(ex.route, affinity, fallbacks)
        stream = bool(body.get("stream"))
        # The same attempt metrics and spans as open(); the relayed body carries no trace header of ours.
        before, after = self.observer.attempts(ex, {}) if self.observer else (None, None)

        async def attempt(target: Target) -> Any:
            if before is not None:
                before(target)
            up = self.upstreams.get(target.provider)
            if not isinstance(up, OpenAICompatUpstream):
                raise GatewayError(f"provider '{target.provider}' is not available", status=503, retryable=True)
            return await up.chat(orjson.dumps(chat_body(body, target.upstream_model, meter_stream=True)), stream)

        try:
            opened = await self.router.open(targets, attempt, stream=stream, probe=probe, observe=after)
        except GatewayError as e:
            ex.attempts, ex.attempt_log = e.attempts, e.attempt_log
            raise provider_error(e) from None
        ex.target, ex.attempts = opened.target, opened.attempts
        ex.attempt_log = opened.log.entries or None
        if stream and opened.chunks is not None and self.observer is not None:
            self.observer.stream_started(ex)
        return opened

    # -- settlement ----------------------------------------------------------------------------------
    def finish(self, ex: Exchange, error: GatewayError | None = None) -> None:
        """Settle the reservation with the actual cost and queue the ledger row; idempotent."""
        if ex.settled:
            return
        ex.settled = True
        if ex.concurrency_held and ex.key is not None:
            self._background(self.limiter.release(ex.key, ex.request_id))
        if error is not None:
            ex.status, ex.error_type = error.status, error.kind
        if self.observer is not None:
            self.observer.request_done(ex, error)
        if ex.key is None:
            return  # unauthenticated: nothing to bill, nothing to attribute
        route = ex.route
        rates = self.prices[route.public_id] if route else None
        cost = rates.cost_micros(ex.usage) if rates else 0
        savings = rates.cache_savings_micros(ex.usage) if rates else 0
        if self.limiter.counts_tokens(ex.key):
            self._background(self.limiter.add_tokens(ex.key, ex.usage.input_tokens + ex.usage.output_tokens))
        target, key, usage = ex.target, ex.key, ex.usage
        row = (  # in store/ledger_rows.COLUMNS order
            now_ms(), ex.request_id, key.id, key.user.id if key.user else None, key.team.id if key.team else None,
            ex.api, ex.endpoint, ex.model, route.public_id if route else None,
            target.provider if target else None, target.upstream_model if target else None,
            ex.stream, ex.status, ex.error_type,
            usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_5m_tokens,
            usage.cache_write_1h_tokens, cost, savings,
            int((time.monotonic() - ex.started) * 1000), ex.ttft_ms,
            ex.attempts, orjson.dumps(ex.attempt_log).decode() if ex.attempt_log else None, ex.disconnected,
        )
        self.writer.record(row, self.leases.settle(ex.ticket, ex.key.refs, cost))
        self.admission.settled()
        if self.observer is not None:
            self.observer.spend(ex, cost)


    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
