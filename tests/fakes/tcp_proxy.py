"""A TCP proxy in a thread, to make a real database or Redis unreachable or hung on demand.

mode "pass" forwards bytes; "refuse" closes every connection (as a stopped server's port would); "hang"
accepts and holds connections but forwards nothing, in either direction (a stalled server or network).
"""

from __future__ import annotations

import asyncio
import threading

from tests.gateway import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def set_mode(self, mode: str) -> None:
        """Switch mode; "refuse" and "hang" also cut or freeze the connections already open."""
        def apply() -> None:
            self.mode = mode
            if mode == "refuse":
                for w in list(self._writers):
                    w.transport.abort()
        self._loop.call_soon_threadsafe(apply)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self.mode == "refuse":
                return
            up_r, up_w = await asyncio.open_connection(*self.target)
            self._writers.add(up_w)
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)
        finally:
            writer.transport.abort()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            while self.mode == "hang":
                await asyncio.sleep(0.05)
            if self.mode == "refuse":
                break
            w.write(data)
        w.transport.abort()
