"""Client disconnects, seen while a request is admitted, routed and relayed.

Uvicorn's `send` silently drops writes after a disconnect; without watching `receive`, a gateway would keep an
abandoned upstream generation running (and billing) to the end. The pipeline runs every request's work under
the server's `watched` (server/asgi.py: orgate's own server calls back on disconnect, any other ASGI server
gets this task-based watcher), so a client that leaves cancels it: the upstream is closed and the usage seen
so far is billed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
# Runs work while watching the client for a disconnect; True when the client left (server/asgi.watched).
Watched = Callable[[Any, Callable[[], Awaitable[None]]], Awaitable[bool]]


class ClientGone(Exception):
    """The client disconnected."""


class DisconnectWatcher:
    """Waits on `receive` for http.disconnect while a response streams, so the upstream can be closed."""

    __slots__ = ("_task", "gone")

    def __init__(self, receive: Receive, on_disconnect: Callable[[], None]) -> None:
        self.gone = False

        async def watch() -> None:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    self.gone = True
                    on_disconnect()
                    return

        self._task = asyncio.get_running_loop().create_task(watch())

    def stop(self) -> None:
        self._task.cancel()
