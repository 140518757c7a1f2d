"""An aiohttp application served on an ephemeral loopback port from its own thread (for test servers)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web


class ThreadedServer:
    def __init__(self, build: Callable[[web.Application], None]) -> None:
        self.build = build
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> str:
        ready = threading.Event()

        async def setup() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            self.build(app)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(setup())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(10), "test server did not start"
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
