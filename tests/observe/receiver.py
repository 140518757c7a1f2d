"""A real HTTP receiver on an ephemeral port, in its own thread: records every POST, answers as scripted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.threaded import ThreadedServer

# Given the request number (1-based), the path, headers and body: the status to answer.
Answer = Callable[[int, str, dict[str, str], bytes], int]


class Receiver:
    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer or (lambda n, path, headers, body: 200)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadedServer(lambda app: app.router.add_route("POST", "/{tail:.*}", self._handle))
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            n = len(self.requests) + 1
            status = self.answer(n, request.path, headers, body)
            self.requests.append({"path": request.path, "headers": headers, "body": body, "status": status})
        return web.Response(status=status, body=b"{}", content_type="application/json")

    def start(self) -> Receiver:
        self.url = self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
