"""Stopping with requests in flight: the shutdown grace, then an error in each open stream's dialect.

On SIGTERM (or SIGINT) uvicorn stops accepting connections and waits for the requests in flight. orgate gives
them `server.shutdown_grace_seconds`; when that runs out, every response still being read from a provider
fails at its next read with ShuttingDown (upstreams/http.py `end_all`), so each relay ends its stream the
way it ends any upstream failure: an Anthropic `error` event of type overloaded_error, OpenAI's error chunk
and `[DONE]`, a Responses `response.failed`; a request still waiting for its answer gets a 529. Each is
settled and its ledger row queued; the ledger's last flush waits for them (`settle`). uvicorn's own
timeout is the grace plus MARGIN, a backstop for a client that no longer reads.

uvicorn tells an app nothing when shutdown begins, so `watch_signals` chains a handler in front of uvicorn's
own (installed for the duration of serving, in each worker process too) that only starts the grace timer.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

from orgate.errors import ShuttingDown
from orgate.upstreams import http

MARGIN = 5.0  # seconds after the grace for the streams to send their last event and settle
SIGNALS = (signal.SIGTERM, signal.SIGINT)
log = logging.getLogger("orgate")


class Drain:
    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.tasks: set[asyncio.Task[Any]] = set()  # the requests in flight (App.__call__)
        self._previous: dict[int, Any] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # not serving (an app driven by a test or a benchmark in a thread): no signals to watch
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.begin)
                previous(signum, frame)

            self._previous[sig] = previous
            signal.signal(sig, handler)

    def restore_signals(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def begin(self) -> None:
        """Shutdown started: the grace runs from now."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.grace, self.end_streams)

    def end_streams(self) -> None:
        n = http.end_all(ShuttingDown)
        if n:
            log.warning("shutdown grace of %s s over: %d upstream responses still open end with an error", self.grace, n)

    async def settle(self, timeout: float = MARGIN) -> None:
        """Wait (bounded) for the requests still in flight to settle, so their rows reach the last flush."""
        if self._timer is not None:
            self._timer.cancel()
        pending = {t for t in self.tasks if t is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)
