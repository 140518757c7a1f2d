"""One structured JSON line per request, written by a background thread (never on the event loop).

What a line may hold: request id, upstream request id, key *prefix*, API, model, provider, status, error
type, tokens, cost, latency. Never a key, a provider credential, or a prompt (prompts only when the
operator sets server.log_prompts, and even then not in this line).
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

import orjson


class AccessLog:
    def __init__(self, log_prompts: bool = False) -> None:
        self.logger = logging.getLogger("orgate.access")
        self.logger.propagate = False
        self.log_prompts = log_prompts
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._handler = logging.handlers.QueueHandler(q)
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(message)s"))
        self._listener = logging.handlers.QueueListener(q, stream)
        self._listener.start()
        self.logger.handlers = [self._handler]
        self.logger.setLevel(logging.INFO)

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
        self.logger.info(orjson.dumps({k: v for k, v in line.items() if v is not None}).decode())

    def close(self) -> None:
        self._listener.stop()
