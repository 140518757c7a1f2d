"""Telling an outage of the gateway's own stores (database, Redis) from a bug.

Connection refused or reset, a pool or statement timeout, a dropped connection: each means "try again
shortly", and is answered 503 with `x-should-retry: true` and `retry-after` (errors.DependencyUnavailable).
Anything else stays an internal error. Timeouts that bound how long an outage can hold a request are set
where the clients are made (store/db.py, store/redis_counters.py).
"""

from __future__ import annotations

import asyncio
import sys

import sqlalchemy.exc as sx

from orgate.errors import DependencyUnavailable

_DOWN = (OSError, ConnectionError, TimeoutError, asyncio.TimeoutError, sx.OperationalError, sx.InterfaceError,
         sx.TimeoutError)


def _redis() -> object | None:
    """redis.exceptions when redis-py is loaded. Without Redis configured it never is (importing the package
    costs ~15 MB of RSS and most of a second: it pulls in cryptography and OpenTelemetry's API), and then no
    Redis error can occur."""
    return sys.modules.get("redis.exceptions")


def is_outage(e: BaseException) -> bool:
    if isinstance(e, _DOWN):
        return True
    rx = _redis()
    if rx is not None and isinstance(e, (rx.ConnectionError, rx.TimeoutError, rx.BusyLoadingError)):  # type: ignore[attr-defined]
        return True
    return isinstance(e, sx.DBAPIError) and bool(e.connection_invalidated)


def unavailable(e: BaseException) -> DependencyUnavailable | None:
    """The 503 to answer for `e` when it is a store outage, else None."""
    if not is_outage(e):
        return None
    rx = _redis()
    which = "Redis" if rx is not None and isinstance(e, rx.RedisError) else "database"  # type: ignore[attr-defined]
    return DependencyUnavailable(f"The gateway's {which} is unavailable; retry shortly.")
