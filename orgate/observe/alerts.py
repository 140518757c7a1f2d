"""Alerts: budget thresholds, exhausted and disabled keys, circuits opening and closing, sent to webhooks.

Events (the `type` field of the JSON body):
  budget.threshold   a key's, user's or team's spend in its period reached one of `alerts.budget_thresholds`
                     (% of the budget); `data.level` says which, `data.key` / `data.user` / `data.team` who;
                     thresholds of 100 % or more also count as reached when that level is exhausted (below)
  key.exhausted      a request was refused because the key's budget cannot cover it (first time per period);
  user.exhausted     ... the budget of the user the key belongs to;
  team.exhausted     ... the budget of the team the key charges.
                     Budgets reserve each request's worst case, so a real request can rarely spend the last
                     cents: "exhausted" is when a level stops working, and so it also marks its 100 % threshold
  key.disabled       an admin disabled the key
  circuit.open       a deployment's circuit breaker opened (announced once, whichever instance saw it first)
  circuit.closed     ... and closed again

Each event is recorded once (store/alerts_repo.py explains how, across instances) and delivered to every
webhook whose `events` list includes its type (or that lists none). A delivery is a POST of the JSON body with
  X-Orgate-Event: <type>    X-Orgate-Event-Id: <id, stable across retries>
  X-Orgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body, keyed by the webhook's secret>
A 2xx answer is delivered; anything else is retried with exponential backoff (`retry_base_seconds`, doubling,
at most `retry_max_seconds`) up to `max_attempts`; each attempt's status and error are recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from orgate.config import AlertSettings
from orgate.governance import budget
from orgate.governance.keys import now_ms
from orgate.store.alerts_repo import AlertsRepo

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("orgate.alerts")
CLAIM_MS = 60_000
# Dedup keys remembered in memory. Each period, threshold and circuit move adds one for good, so without a
# bound the set grows for the life of the process; past it a repeat costs one INSERT that does nothing.
SEEN_LIMIT = 10_000


def sign(secret: str, body: bytes, ts: int) -> str:
    mac = hmac.new(secret.encode(), str(ts).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def crossed(spent: int, limit: int | None, thresholds: list[int]) -> list[int]:
    """The thresholds (percent of the budget) a period's spend has reached."""
    if not limit or limit <= 0:
        return []
    return [t for t in thresholds if spent * 100 >= limit * t]


def _key_data(key_id: int, name: str, prefix: str) -> dict[str, Any]:
    return {"id": key_id, "name": name, "prefix": prefix}


def _who(level: str, row: dict[str, Any]) -> dict[str, Any]:
    """Who a budget event is about, as `data.<level>`."""
    if level == "key":
        return _key_data(row["id"], row["name"], row["prefix"])
    if level == "user":
        return {"id": row["id"], "name": row["name"], "email": row["email"]}
    return {"id": row["id"], "name": row["name"]}


def _dedup(kind: str, level: str, ident: int, rest: str) -> str:
    # Key events keep the names they had before users and teams existed, so nothing is announced twice.
    return f"{kind}:{ident}:{rest}" if level == "key" else f"{kind}:{level}:{ident}:{rest}"


class Alerts:
    def __init__(self, settings: AlertSettings, repo: AlertsRepo, metrics: Any = None) -> None:
        self.s = settings
        self.repo = repo
        self.metrics = metrics
        self.thresholds = sorted(set(settings.budget_thresholds))
        self.hooks = {w.url: w for w in settings.webhooks}
        self._seen: set[str] = set()  # dedup keys this instance recorded already: no database round trip
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    # -- recording ---------------------------------------------------------------------------------------
    async def emit(self, kind: str, dedup_key: str, data: dict[str, Any]) -> bool:
        """Records an event once; True when this call recorded it."""
        if dedup_key in self._seen:
            return False
        if len(self._seen) >= SEEN_LIMIT:  # only a shortcut: the database's unique dedup_key is what dedups
            self._seen.clear()
        self._seen.add(dedup_key)
        uid = "evt_" + uuid.uuid4().hex
        body = {"id": uid, "type": kind, "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "data": data}
        urls = [w.url for w in self.s.webhooks if not w.events or kind in w.events]
        try:
            made = await self.repo.add_event(uid=uid, dedup_key=dedup_key, kind=kind,
                                             payload=orjson.dumps(body).decode(), urls=urls)
        except Exception:
            log.exception("could not record alert %s", dedup_key)
            self._seen.discard(dedup_key)
            return False
        if made and urls:
            self._wake.set()
        return made

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def settled(self, charged: set[tuple[str, int]]) -> None:
        """After a ledger flush moved spend onto these (level, id): check their thresholds."""
        if self.thresholds:
            for level in ("key", "user", "team"):
                ids = {i for lv, i in charged if lv == level}
                if ids:
                    self._spawn(self.check_budgets(ids, level=level))

    async def check_budgets(self, ids: set[int], exhausted: bool = False, level: str = "key") -> None:
        try:
            rows = await self.repo.budget_rows(level, ids)
        except Exception:
            log.exception("budget threshold check failed")
            return
        for r in rows:
            start = budget.period_start(r["budget_period"])
            spent = 0 if r["period_start_ms"] < start else r["spent_micros"]
            data = {"level": level, level: _who(level, r), "spent_micros": spent,
                    "budget_micros": r["budget_micros"], "period": r["budget_period"], "period_start_ms": start}
            if exhausted:
                await self.emit(f"{level}.exhausted", _dedup("exhausted", level, r["id"], str(start)), data)
            reached = set(crossed(spent, r["budget_micros"], self.thresholds))
            if exhausted:
                reached.update(t for t in self.thresholds if t >= 100)
            for t in sorted(reached):
                await self.emit("budget.threshold", _dedup("budget", level, r["id"], f"{start}:{t}"),
                                {**data, "threshold_percent": t})

    def exhausted(self, key: Any, level: str = "key") -> None:
        """A request was refused for lack of this level's budget (the request path: no database work unless new)."""
        holder = key if level == "key" else getattr(key, level, None)
        if holder is None:
            return
        if _dedup("exhausted", level, holder.id, str(budget.period_start(holder.budget_period))) not in self._seen:
            self._spawn(self.check_budgets({holder.id}, exhausted=True, level=level))

    def key_disabled(self, row: dict[str, Any], actor: str) -> None:
        self._spawn(self.emit("key.disabled", f"disabled:{row['id']}:{row['updated_ms']}", {
            "key": _key_data(row["id"], row["name"], row["prefix"]), "by": actor}))

    def circuit(self, target: Any, is_open: bool) -> None:
        self._spawn(self._circuit(target, "open" if is_open else "closed"))

    async def _circuit(self, target: Any, state: str) -> None:
        try:
            moved = await self.repo.circuit_moved(target.label, state)
        except Exception:
            log.exception("circuit state update failed")
            return
        if moved:
            await self.emit(f"circuit.{state}", f"circuit:{target.label}:{state}:{now_ms()}", {
                "deployment": target.label, "provider": target.provider, "upstream_model": target.upstream_model})

    # -- delivery ----------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.s.webhooks:
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.s.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception:  # the database may be briefly unavailable: next round
                log.exception("alert delivery round failed")

    async def deliver_due(self) -> None:
        for row in await self.repo.due():
            if await self.repo.claim(row["id"], CLAIM_MS):
                await self._deliver(row)

    async def _deliver(self, row: dict[str, Any]) -> None:
        hook = self.hooks.get(row["url"])
        attempt = row["attempts"] + 1
        if hook is None:  # removed from the configuration since the event was recorded
            await self.repo.record_attempt(row["id"], ok=False, status=None, error="webhook no longer configured",
                                           give_up=True, retry_at_ms=0)
            return
        body = row["payload"].encode()
        headers = {"content-type": "application/json", "user-agent": "orgate-alerts",
                   "x-orgate-event": row["kind"], "x-orgate-event-id": row["uid"],
                   "x-orgate-delivery-attempt": str(attempt)}
        if hook.secret:
            headers["x-orgate-signature"] = sign(hook.secret, body, int(time.time()))
        status, error = await self._post(hook.url, body, headers)
        ok = status is not None and 200 <= status < 300
        if self.metrics is not None:
            self.metrics.alert_deliveries.labels("delivered" if ok else "failed").inc()
        delay = min(self.s.retry_max_seconds, self.s.retry_base_seconds * 2 ** (attempt - 1))
        delay *= random.uniform(0.8, 1.0)  # several instances' retries do not arrive in step
        await self.repo.record_attempt(row["id"], ok=ok, status=status, error=error,
                                       give_up=not ok and attempt >= self.s.max_attempts,
                                       retry_at_ms=now_ms() + int(delay * 1000))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
        # Imported at the first delivery: a gateway without webhooks never loads the HTTP client (~8 MB).
        import aiohttp

        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.s.timeout_seconds))
        try:
            async with self._http.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                await resp.read()
                return resp.status, None if resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as e:
            return None, f"{type(e).__name__}: {e}"[:300]

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except (asyncio.CancelledError, Exception):
                pass
        if self._http is not None:
            await self._http.close()
