"""The router's replay of a stream's primed chunks (routing/router.py `_prime`, `_Replay`)."""

from __future__ import annotations

import pytest

from orgate.routing.router import _prime


class Probe:
    error = None

    def __init__(self, after: int) -> None:
        self.left = after

    def feed(self, chunk: bytes) -> bool | None:
        self.left -= 1
        return True if self.left == 0 else None


class Resp:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.reads = 0

    async def _gen(self):
        for c in self.chunks:
            self.reads += 1
            yield c

    def iter_chunks(self):
        return self._gen()


@pytest.mark.parametrize("held", [1, 2, 3])
async def test_held_chunks_come_first_in_order_then_the_rest(held):
    resp = Resp([b"a", b"b", b"c", b"d"])
    ok, _, chunks = await _prime(resp, lambda: Probe(held))
    assert ok and resp.reads == held  # priming read only until the verdict
    assert chunks.__aiter__() is chunks
    assert [c async for c in chunks] == [b"a", b"b", b"c", b"d"]
    with pytest.raises(StopAsyncIteration):
        await chunks.__anext__()


async def test_a_stream_that_ended_while_priming_replays_all_and_ends():
    resp = Resp([b"a", b"b"])
    ok, _, chunks = await _prime(resp, lambda: Probe(10))
    assert ok  # undecided at the end: relayed as is
    assert [c async for c in chunks] == [b"a", b"b"]


async def test_an_error_after_the_held_chunks_reaches_the_relay():
    class Failing(Resp):
        async def _gen(self):
            yield b"a"
            raise RuntimeError("cut")

    ok, _, chunks = await _prime(Failing([]), lambda: Probe(1))
    assert await chunks.__anext__() == b"a"
    with pytest.raises(RuntimeError, match="cut"):
        await chunks.__anext__()
