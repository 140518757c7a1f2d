"""One structured JSON line per request, written by a background thread (never on the event loop).

What a line may hold: request id, upstream request id, key *prefix*, API, model, provider, status, error
type, tokens, cost, latency. Never a key, a provider credential, or a prompt (prompts only when the
operator sets server.log_prompts: then the request body, cut to 64 KB, in a "prompt" field).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any

import orjson


class AccessLog:
    """Lines go into a queue as bytes; one thread writes them. No logging.LogRecord per request: the
    logging module's machinery cost more than the JSON line itself on the hot path."""

    def __init__(self, log_prompts: bool = False, stream: Any = None) -> None:
        self.log_prompts = log_prompts
        self._out = stream or sys.stderr.buffer
        self._q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="orgate-access-log", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            line = self._q.get()
            if line is None:
                return
            try:
                self._out.write(line)
                if self._q.empty():
                    self._out.flush()
            except (OSError, ValueError):
                pass  # stderr closed: nothing to do about a log line

    def write(self, ex: Any, error: Any) -> None:
        u = ex.usage
        line = {
            "ts": round(time.time(), 3), "request_id": ex.request_id, "api": ex.api, "endpoint": ex.endpoint,
            "key": ex.key.prefix if ex.key else None, "model": ex.model,
            "provider": ex.target.provider if ex.target else None, "status": error.status if error else ex.status,
            "error_type": error.kind if error else ex.error_type, "stream": ex.stream,
            "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cache_read_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens,
            "latency_ms": int((time.monotonic() - ex.started) * 1000),
            "ttft_ms": ex.ttft_ms, "attempts": ex.attempts, "disconnected": ex.disconnected or None,
        }
        if error is not None:
            line["error"] = error.message[:300]
        if self.log_prompts and getattr(ex, "prompt", None):
            # Only when the operator set server.log_prompts: the request body, cut to 64 KB.
            line["prompt"] = ex.prompt[:65536].decode("utf-8", "replace")
        self._q.put(orjson.dumps({k: v for k, v in line.items() if v is not None}) + b"\n")

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(5)
