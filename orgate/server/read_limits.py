"""The reading limits orgate's protocol enforces (server/guard.py), from settings, and its refusals."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from orgate.config import ServerSettings
from orgate.errors import STATUS_KIND


@dataclass(frozen=True)
class ReadLimits:
    max_header_bytes: int = 64 * 1024
    max_headers: int = 200
    header_timeout_seconds: float = 10.0
    body_min_bytes_per_second: int = 1024
    body_window_seconds: float = 10.0
    max_connections: int = 4096
    max_buffered_body_bytes: int = 12 * 1024 * 1024


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: bytes = b"") -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def refusal(status: int, message: str, headers: bytes = b"") -> bytes:
    """A complete HTTP/1.1 error response that closes the connection (Anthropic's error shape)."""
    body = orjson.dumps({"type": "error", "error": {"type": STATUS_KIND.get(status, "invalid_request_error"),
                                                    "message": message}})
    return b"".join([STATUS_LINE[status], b"content-type: application/json\r\n",
                     b"content-length: %d\r\n" % len(body), b"connection: close\r\n", headers, b"\r\n", body])


FD_HEADROOM = 256  # descriptors kept for the database pool, Redis, upstream connections and files


def read_limits(s: ServerSettings) -> ReadLimits:
    """The limits from settings, with the connection cap fitted to the file limit (first raised to its hard
    maximum): past the file limit `accept` fails and every new client, normal or not, is turned away."""
    cap = s.max_connections
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        if soft != resource.RLIM_INFINITY:
            cap = min(cap, max(16, soft - FD_HEADROOM))
    except (ImportError, ValueError, OSError):
        pass
    return ReadLimits(s.max_header_bytes, s.max_headers, s.header_timeout_seconds, s.body_min_bytes_per_second,
                      s.body_window_seconds, cap, s.max_buffered_body_bytes)
