"""One structured JSON line per request, written by a background thread (never on the event loop).

What a line may hold: request id, upstream request id, key *prefix*, API, model, provider, status, error
type, tokens, cost, latency. Never a key, a provider credential, or a prompt (prompts only when the
operator sets server.log_prompts: then the request body, cut to 64 KB, in a "prompt" field).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any

import orjson

BATCH_SECONDS = 0.05  # how long the writer lets lines gather after the first one of a batch


class AccessLog:
    """Lines are appended as bytes; one thread writes them, in batches. No logging.LogRecord per request:
    the logging module's machinery cost more than the JSON line itself on the hot path.

    The thread is woken once per batch, not once per line: waking it for every line cost two context switches
    and a GIL hand-off per request (about a tenth of a request's CPU at one client in the benchmark). A line
    reaches the stream at most BATCH_SECONDS (plus the write) after its request ended."""

    def __init__(self, log_prompts: bool = False, stream: Any = None) -> None:
        self.log_prompts = log_prompts
        self._out = stream or sys.stderr.buffer
        self._lines: collections.deque[bytes] = collections.deque()
        self._wake = threading.Event()
        self._armed = False  # the thread has been woken for the lines now gathering
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="orgate-access-log", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            self._wake.wait()
            if not self._closed:
                time.sleep(BATCH_SECONDS)
            self._wake.clear()
            self._armed = False  # before taking the lines: a line appended after this re-arms the wake-up
            lines = []
            while self._lines:
                lines.append(self._lines.popleft())
            if lines:
                try:
                    self._out.write(b"".join(lines))
                    self._out.flush()
                except (OSError, ValueError):
                    pass  # stderr closed: nothing to do about a log line
            if self._closed and not self._lines:
                return

    def write(self, ex: Any, error: Any) -> None:
        u = ex.usage
        # Fields that are often empty are added only when set (the line omits nulls), without a second dict.
        line: dict[str, Any] = {"ts": round(time.time(), 3), "request_id": ex.request_id, "api": ex.api,
                                "endpoint": ex.endpoint}
        if ex.key:
            line["key"] = ex.key.prefix
        if ex.model is not None:
            line["model"] = ex.model
        if ex.target:
            line["provider"] = ex.target.provider
        line["status"] = error.status if error else ex.status
        kind = error.kind if error else ex.error_type
        if kind is not None:
            line["error_type"] = kind
        line["stream"] = ex.stream
        line["input_tokens"] = u.input_tokens
        line["output_tokens"] = u.output_tokens
        line["cache_read_tokens"] = u.cache_read_tokens
        line["cache_write_tokens"] = u.cache_write_tokens
        line["latency_ms"] = int((time.monotonic() - ex.started) * 1000)
        if ex.ttft_ms is not None:
            line["ttft_ms"] = ex.ttft_ms
        line["attempts"] = ex.attempts
        if ex.disconnected:
            line["disconnected"] = True
        if error is not None:
            line["error"] = error.message[:300]
        if self.log_prompts and getattr(ex, "prompt", None):
            # Only when the operator set server.log_prompts: the request body, cut to 64 KB.
            line["prompt"] = ex.prompt[:65536].decode("utf-8", "replace")
        self._lines.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))  # no copy to add the newline
        if not self._armed:
            self._armed = True
            self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(5)
