"""The composition root: builds every part from Settings and dispatches ASGI requests to surfaces.

Only this module (and the CLI) picks concrete stores and reads settings; everything below receives what it
needs. Routes are a dict lookup on a normalised path, so `/v1/v1/messages` (clients whose base URL already
ends in /v1), `/messages` and `/v1/messages` all reach the same handler.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orgate.config import Settings
from orgate.errors import GatewayError, NotFound
from orgate.governance.leases import BudgetLeases
from orgate.governance.limits import Limiter
from orgate.keyauth import KeyAuth
from orgate.logs import AccessLog
from orgate.observe import tracing
from orgate.observe.alerts import Alerts
from orgate.observe.hooks import Observer
from orgate.observe.metrics import Metrics
from orgate.pipeline import Pipeline
from orgate.routing.catalog import Catalog
from orgate.routing.router import Router
from orgate.server import anthropic_api, models_api
from orgate.server.asgi import Receive, Request, Scope, Send, respond, watched
from orgate.server.drain import Drain
from orgate.server.intake import totals as intake_totals
from orgate.server.preauth import error_body, key_first
from orgate.server.render import error_headers
from orgate.server.trim import trim_forever
from orgate.server.workers import HOST_SOCKET, SUPERVISED
from orgate.store.alerts_repo import AlertsRepo
from orgate.store.audit_repo import AuditRepo
from orgate.store.budget_repo import BudgetRepo
from orgate.store.db import head_revision, make_engine, migrate_in_child
from orgate.store.keys_repo import KeysRepo
from orgate.store.writer import LedgerWriter
from orgate.upstreams import http
from orgate.upstreams.registry import build_upstreams

Handler = Callable[["App", Request], Awaitable[None]]

# Paths OpenAI-style and Anthropic-style clients build from a base URL with or without /v1.
_BARE = ("/messages", "/chat/completions", "/responses", "/models")


def normalize(path: str) -> str:
    p = path.rstrip("/") or "/"
    while p.startswith("/v1/v1/") or p == "/v1/v1":
        p = p[3:]
    if p.startswith(_BARE):
        p = "/v1" + p
    return p


_ID_PREFIX = "req_" + secrets.token_hex(6)  # per process: ids stay unique across instances
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Unique without a random draw per request: a per-process random prefix and a counter."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def load_secret(settings: Settings) -> bytes:
    """The server secret signs sessions and seals reasoning envelopes; generated once into data_dir."""
    if settings.secret:
        return settings.secret.encode()
    path = Path(settings.data_dir) / "secret"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    path.write_bytes(value)
    path.chmod(0o600)
    return value


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = logging.getLogger("orgate")
        self.secret = load_secret(settings)
        self.catalog = Catalog(settings)
        self.router = Router(settings.routing)
        self.engine = make_engine(settings.db_url)
        self.instance_id = uuid.uuid4().hex
        self.keys = KeysRepo(self.engine)
        self.auth = KeyAuth(self.keys, settings.keys.cache_ttl_seconds)
        self.budgets = BudgetRepo(self.engine, self.instance_id, int(settings.budgets.reservation_ttl_seconds * 1000))
        self.leases = BudgetLeases(self.budgets, self.instance_id, settings.budgets.lease_hold_seconds)
        self.writer = LedgerWriter(self.budgets, settings, self.leases)
        self.upstreams = build_upstreams(settings)
        self.counters: Any = None
        if settings.redis_url:  # imported only when used: one instance needs no Redis client in memory
            from orgate.store.redis_counters import RedisCounters

            self.counters = RedisCounters(settings.redis_url)
        self.host: Any = None  # a worker under `serve --workers N`: limits and circuits shared on this host
        if os.environ.get(HOST_SOCKET):
            from orgate.server.host_state import connect

            self.host = connect(os.environ[HOST_SOCKET], self.router)
            self.counters = self.counters or self.host  # Redis, when configured, spans hosts: it wins
        self.pipeline = Pipeline(settings, self.catalog, self.router, self.upstreams, self.budgets, self.writer,
                                 Limiter(self.counters), self.leases)
        self.access = AccessLog(settings.server.log_prompts)
        self.drain = Drain(settings.server.shutdown_grace_seconds)
        self._observability()
        self.envelope: Any = None  # set by the Responses surface when it registers
        self.response_store: Any = None  # likewise (server/responses_extras.py)
        self._trim: asyncio.Task[None] | None = None
        self.routes: dict[tuple[str, str], Handler] = {}
        self.prefix_routes: list[tuple[str, str, Handler]] = []
        self._register()
        # After the routes: gateway sign-in (sso_routes) wraps the key lookup.
        self.pipeline.auth, self.pipeline.access, self.pipeline.watched = self.auth, self.access, watched

    def _observability(self) -> None:
        s = self.settings
        self.metrics = Metrics(s.metrics.per_key_label) if s.metrics.enabled else None
        self.tracing = tracing.from_env(s.server.log_prompts)
        self.alerts = Alerts(s.alerts, AlertsRepo(self.engine), self.metrics)
        self.audit = AuditRepo(self.engine)
        self.schema_head = head_revision()
        self.metrics_server: Any = None
        observer = Observer(self.metrics, self.tracing, self.alerts)
        self.pipeline.observer = observer
        self.router.on_circuit = observer.circuit
        self.writer.on_settled = self.alerts.settled
        if self.metrics is not None:
            self.writer.on_flush = self.metrics.ledger_flushed

    def _serve_metrics_port(self) -> None:
        """`metrics.port`: prometheus_client's own HTTP server, in a thread. With several workers the first
        to bind serves (the values are summed across workers in multiprocess mode); the others skip it."""
        from prometheus_client import start_http_server

        from orgate.observe.metrics import multiprocess, multiprocess_registry

        assert self.metrics is not None and self.settings.metrics.port is not None
        registry = multiprocess_registry() if multiprocess() else self.metrics.registry
        host = self.settings.metrics.host or self.settings.server.host
        try:
            self.metrics_server, _ = start_http_server(self.settings.metrics.port, host, registry)
        except OSError as e:
            self.log.warning("metrics port %s not bound (%s); another worker may serve it",
                             self.settings.metrics.port, e)

    def _register(self) -> None:
        r = self.routes
        r[("POST", "/v1/messages")] = anthropic_api.messages
        r[("POST", "/v1/messages/count_tokens")] = anthropic_api.count_tokens
        r[("GET", "/v1/models")] = models_api.list_models
        self.prefix_routes.append(("GET", "/v1/models/", models_api.get_model))
        r[("GET", "/health")] = r[("GET", "/healthz")] = health
        from orgate.server import extensions  # surfaces added by later modules register themselves

        extensions.register(self)

    def access_log(self, ex: Any, error: GatewayError | None) -> None:
        self.access.write(ex, error)

    async def startup(self) -> None:
        if not os.environ.get(SUPERVISED):  # the supervisor migrated once for all its workers
            await migrate_in_child(self.settings.db_url)
        if self.host is not None:
            await self.host.client.call("hello")  # connected before the first request: circuit pushes arrive
        self.drain.watch_signals()
        self.writer.start()
        self.auth.start()
        self.alerts.start()
        if self.metrics is not None:
            self.metrics.bind_loop(asyncio.get_running_loop())
            self.metrics.watch_intake(intake_totals)
            if self.settings.metrics.port is not None:
                self._serve_metrics_port()
        self._trim = asyncio.get_running_loop().create_task(trim_forever())  # RSS follows use after bursts
        if self.settings.server.gc_threshold:
            gc_tuned(self.settings.server.gc_threshold)

    async def shutdown(self) -> None:
        if self._trim is not None:
            self._trim.cancel()
        self.drain.restore_signals()
        await self.drain.settle()  # the rows of requests ended at the grace reach the last flush
        await self.auth.close()
        await self.writer.close()
        await self.alerts.close()
        if self.tracing is not None:
            self.tracing.shutdown()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        for up in self.upstreams.values():
            await up.aclose()
        await http.close_session()
        if self.counters is not None:
            await self.counters.aclose()
        if self.host is not None and self.host is not self.counters:
            await self.host.aclose()
        await self.engine.dispose()
        self.access.close()

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    self.log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An HTTP request to its surface, counted in flight for the drain; lifespan events to startup and
        shutdown. The dispatch is here, not in a coroutine of its own: every time a request's task resumes
        (each read from its upstream), it passes through every coroutine the task is awaiting in."""
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.lifespan(receive, send)
            return
        task = asyncio.current_task()
        tasks = self.drain.tasks
        tasks.add(task)  # type: ignore[arg-type]
        try:
            path = normalize(scope["path"])
            req = Request(scope, receive, send, new_request_id())
            req.path = path
            handler = self.routes.get((scope["method"], path))
            if handler is None:
                for method, prefix, h in self.prefix_routes:
                    if scope["method"] == method and path.startswith(prefix):
                        handler = h
                        break
            if handler is None:
                await not_found(req)
            elif not await key_first(self, req):
                pass
            elif self.tracing is not None and path.startswith(("/v1/", "/v2/")):
                await self._traced(handler, req)
            else:
                await handler(self, req)
        finally:
            tasks.discard(task)  # type: ignore[arg-type]

    async def _traced(self, handler: Handler, req: Request) -> None:
        """The request inside its SERVER span, whose status is the one sent to the client."""
        assert self.tracing is not None
        token = self.tracing.start_request(req.method, req.path, req.headers)
        status: list[int] = []
        send = req.send

        async def capture(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                status.append(msg["status"])
            await send(msg)

        req.send = capture
        try:
            await handler(self, req)
        finally:
            self.tracing.end_request(token, status[0] if status else None)


def gc_tuned(threshold: int) -> None:
    """Take what start loaded (modules, the catalog, SQLAlchemy's tables: ~70,000 objects) out of the cyclic
    collector's scans, and let it run after `threshold` net new objects instead of 700.

    Under load the collector cost ~24 us a request (bench: 15 full collections over 23,000 requests took
    362 ms, each scanning everything start had loaded; 1,900 young collections another 200 ms). Requests free
    their objects by reference counting; what builds up between collections is mostly ledger rows waiting for
    their flush, so a larger threshold holds a few MB more at most. Objects loaded at start are still freed
    by reference counting; only a cycle among them would no longer be collected."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, 10, 10)


async def health(app: App, req: Request) -> None:
    await respond(req.send, 200, b'{"status":"ok"}', {})


async def not_found(req: Request) -> None:
    err = NotFound(f"No route for {req.method} {req.scope['path']}.")
    await respond(req.send, 404, error_body(req, err), error_headers(err, req.request_id))


def create_app(settings: Settings) -> App:
    return App(settings)
