"""State the workers of one host share without Redis: per-key rate-limit counters and circuit state.

The supervisor (server/workers.py) runs `HostStateService` on a thread of its own: a unix socket in a
private (0700) temporary directory, serving one in-process `MemoryCounters` and one circuit board (a Router's
breakers) to every worker. A worker talks to it through `HostCounters` (the `Counters` port of
governance/limits.py) and `share_circuits`, one connection per worker, requests pipelined over it as
length-prefixed msgpack frames; circuit changes are pushed to every worker.

Counts are exact across the workers (one counter, one event loop: every check is atomic). A worker that
dies loses its connection, and the service gives back every concurrency slot that connection still holds,
so a crashed worker leaks no slot. Keys without limits never send anything; circuit state is only sent on a
failure and on the first success after failures. Approximate: a circuit change reaches the other workers a
round trip later, and after a cool-down each worker may send its own half-open probe (at most N probes).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
import threading
from collections import Counter
from typing import Any

import msgspec

from orgate.governance.limits import MemoryCounters
from orgate.routing.router import Router

_LEN = struct.Struct(">I")
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (n,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    return _dec.decode(await reader.readexactly(n))


def _frame(obj: Any) -> bytes:
    data = _enc.encode(obj)
    return _LEN.pack(len(data)) + data


class HostStateService:
    def __init__(self, settings: Any) -> None:
        self.counters = MemoryCounters()
        self.board = Router(settings.routing)  # its breakers are the host's circuit state
        self._writers: set[asyncio.StreamWriter] = set()
        self._dir = tempfile.mkdtemp(prefix="orgate-host-")  # 0700: only this user's processes connect
        self.path = os.path.join(self._dir, "state.sock")
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    def start(self) -> HostStateService:
        threading.Thread(target=self._run, name="orgate-host-state", daemon=True).start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_unix_server(self._serve, path=self.path))
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held: Counter[tuple[Any, ...]] = Counter()  # concurrency slots this connection holds: (ident, holder)
        self._writers.add(writer)
        try:
            while True:
                rid, op, args = await _read_frame(reader)
                writer.write(_frame([rid, await self._call(op, args, held)]))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for (ident, *holder), n in held.items():  # the worker died or left: its slots go back
                for _ in range(n):
                    await self.counters.release(ident, *holder)
            self._writers.discard(writer)
            writer.close()

    async def _call(self, op: str, args: list[Any], held: Counter[tuple[Any, ...]]) -> Any:
        if op == "admit":
            code = await self.counters.admit(*args)
            if code == 0 and args[4]:  # a concurrency slot was taken
                held[(args[0], *args[5:])] += 1
            return code
        if op == "release":
            slot = tuple(args)
            if held[slot] > 0:
                held[slot] -= 1
                await self.counters.release(*args)
            return None
        if op == "hello":
            return None
        if op == "add_tokens":
            return await self.counters.add_tokens(*args)
        if op == "circuit":
            label, failed = args
            target = _Label(label)
            self.board.failed(target) if failed else self.board.succeeded(target)  # type: ignore[arg-type]
            b = self.board.breakers[label] if label in self.board.breakers else None
            push = _frame([0, [label, b.failures if b else 0, b.open_until if b else 0.0]])
            for w in list(self._writers):
                w.write(push)
            return None
        raise ValueError(f"unknown operation {op}")


class _Label:
    """What the board's Router needs of a target: its label."""

    def __init__(self, label: str) -> None:
        self.label = label


class _Client:
    """One pipelined connection from a worker to the service, opened on first use in the worker's loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.on_push: Any = None  # called with each pushed circuit state
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._lock = asyncio.Lock()

    async def call(self, op: str, *args: Any) -> Any:
        if self._writer is None:
            async with self._lock:
                if self._writer is None:
                    reader, self._writer = await asyncio.open_unix_connection(self.path)
                    asyncio.get_running_loop().create_task(self._read(reader))
        self._next += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = fut
        self._writer.write(_frame([self._next, op, list(args)]))
        return await fut

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                rid, result = await _read_frame(reader)
                if rid == 0 and self.on_push is not None:
                    self.on_push(*result)
                    continue
                fut = self._pending.pop(rid, None)
                if fut is not None and not fut.done():
                    fut.set_result(result)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"host state service gone: {e}"))
            self._pending.clear()
            self._writer = None

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.close()


class HostCounters:
    """The `Counters` port, answered by the supervisor's counters: one limit for all workers of this host."""

    def __init__(self, client: _Client) -> None:
        self.client = client

    async def admit(self, ident: str, window: int, rpm: int, tpm: int, concurrency: int, *holder: str) -> int:
        return int(await self.client.call("admit", ident, window, rpm, tpm, concurrency, *holder))

    async def release(self, ident: str, *holder: str) -> None:
        await self.client.call("release", ident, *holder)

    async def add_tokens(self, ident: str, window: int, n: int) -> None:
        await self.client.call("add_tokens", ident, window, n)

    async def aclose(self) -> None:
        await self.client.aclose()


def connect(path: str, router: Router) -> HostCounters:
    """A worker's link to the service: its counters, and its router's circuits shared with the other workers."""
    client = _Client(path)
    client.on_push = router.apply
    tasks: set[asyncio.Task[Any]] = set()

    def publish(label: str, failed: bool) -> None:
        task = asyncio.get_running_loop().create_task(client.call("circuit", label, failed))
        tasks.add(task)  # held until done: a fire-and-forget task may otherwise be collected
        task.add_done_callback(_forget)

    def _forget(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: with the supervisor gone, this worker's own circuit state still holds

    router.publish = publish
    return HostCounters(client)
