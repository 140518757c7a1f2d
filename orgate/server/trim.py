"""Heap memory freed after a burst goes back to the operating system.

Request bodies are large (a Claude Code request is ~150 KB) and short-lived. glibc serves blocks that size
from its heap once the first of them has been freed (its mmap threshold rises to fit them), and it returns
freed heap memory only from the top of the heap. So after a burst of concurrent large requests the process
keeps the burst's peak as RSS, with the memory free inside it (measured: 57 MB free but kept after 256
concurrent 150 KB requests, against 30 MB in use). `malloc_trim(0)` hands every free page back; run every
TRIM_SECONDS it costs a walk of the free lists (a few milliseconds at most), and RSS follows what is in use.

Elsewhere than glibc (musl, macOS) there is no malloc_trim and this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

TRIM_SECONDS = 10.0


def malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: fn(0)


async def trim_forever(every: float = TRIM_SECONDS) -> None:
    trim = malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(every)
        try:
            trim()
        except Exception:  # never worth stopping the gateway for
            logging.getLogger("orgate").debug("malloc_trim failed", exc_info=True)
            return
