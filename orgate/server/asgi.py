"""Thin ASGI primitives: request wrapper, body reading with a size limit, responses, disconnect watching.

orgate speaks raw ASGI rather than through a framework: the gateway has a dozen routes, and each layer a
framework adds costs microseconds on every request of a hot path that targets well under a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from orgate.core.json_keys import DUPLICATE_KEYS, has_duplicate_keys
from orgate.errors import InvalidRequest, RequestTooLarge
from orgate.pipeline.watch import ClientGone, DisconnectWatcher
from orgate.server.guard import let_go, unwatch_disconnect, watch_disconnect

__all__ = ["ClientGone", "DisconnectWatcher", "Request", "end_stream", "respond", "start_stream", "watched"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Request:
    __slots__ = ("scope", "receive", "send", "headers", "path", "method", "request_id", "_query", "body", "_read",
                 "key")

    def __init__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        # Header names arrive lower-cased from the server; repeated headers join with ", " as HTTP allows.
        h: dict[str, str] = {}
        for k, v in scope["headers"]:
            name = k.decode("latin-1")
            val = v.decode("latin-1")
            h[name] = f"{h[name]}, {val}" if name in h else val
        self.headers = h
        self.request_id = request_id
        self._query: dict[str, list[str]] | None = None
        self.body = b""
        self._read = False
        self.key: Any = None  # set by the key-before-body check (server/preauth.py)

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            qs = self.scope.get("query_string", b"").decode("latin-1")
            self._query = parse_qs(qs, keep_blank_values=True)
        return self._query

    def query_one(self, name: str, default: str | None = None) -> str | None:
        v = self.query.get(name)
        if v and "\x00" in v[0]:  # no column or filter can hold it (PostgreSQL refuses NUL in text)
            raise InvalidRequest(f"{name}: must not contain NUL characters.", param=name)
        return v[0] if v else default

    async def read_body(self, limit: int) -> bytes:
        """The body, read once (a second call, e.g. a handler after the admin check, gets the same bytes)."""
        if self._read:
            if len(self.body) > limit:
                raise RequestTooLarge(f"Request body is larger than the {limit}-byte limit.")
            return self.body
        declared = self.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"Request body is larger than the {limit}-byte limit.")
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                raise ClientGone()
            chunk = msg.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise RequestTooLarge(f"Request body is larger than the {limit}-byte limit.")
                chunks.append(chunk)
            if not msg.get("more_body"):
                break
        self.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._read = True
        return self.body

    def release_body(self) -> None:
        """Forget the body once the request is upstream (Pipeline._run): a stream may last minutes, and its
        request (a long-context prompt: 150 KB to megabytes) is never read again. Its bytes leave the server's
        body budget (server/intake.py): another request may be read in their place."""
        self.body = b""
        let_go(self.receive)

    def json(self) -> Any:
        if not self.body:
            raise InvalidRequest("Request body is empty; expected a JSON object.")
        try:
            obj = orjson.loads(self.body)
        except orjson.JSONDecodeError as e:
            raise InvalidRequest(f"Request body is not valid JSON: {e.args[0] if e.args else e}") from None
        if not isinstance(obj, dict):
            raise InvalidRequest("Request body must be a JSON object.")
        if has_duplicate_keys(self.body):  # what the gateway checks must be what an upstream would read
            raise InvalidRequest(DUPLICATE_KEYS)
        return obj


def header_list(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def respond(send: Send, status: int, body: bytes, headers: dict[str, str],
                  content_type: bytes = b"application/json") -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    raw.extend(header_list(headers))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def start_stream(send: Send, headers: dict[str, str], content_type: bytes = b"text/event-stream") -> None:
    raw = [(b"content-type", content_type), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
    raw.extend(header_list(headers))
    await send({"type": "http.response.start", "status": 200, "headers": raw})


async def end_stream(send: Send, frame: bytes) -> None:
    """A stream's last frame (its dialect's error), sent if the connection still takes it: used when the
    stream fails after its headers are out, so the client gets an error its SDK raises, not a silent cut."""
    with contextlib.suppress(Exception):
        await send({"type": "http.response.body", "body": frame, "more_body": False})


class _Gone:
    """The disconnect callback of orgate's own server (server/guard.py): no task per request."""

    __slots__ = ("task", "gone")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.gone = False

    def __call__(self) -> None:
        self.gone = True
        if self.task is not None:
            self.task.cancel()

    def stop(self) -> None:
        pass


async def watched(req: Request, work: Callable[[], Awaitable[None]]) -> bool:
    """Run `work` while watching for a client disconnect, which cancels it (closing any upstream request it
    holds). Returns True when the client left."""
    task = asyncio.current_task()
    watcher: _Gone | DisconnectWatcher = _Gone(task)
    if not watch_disconnect(req.receive, watcher):  # another ASGI server: watch `receive` with a task
        watcher = DisconnectWatcher(req.receive, lambda: task.cancel() if task else None)
    try:
        await work()
    except asyncio.CancelledError:
        if not watcher.gone:
            raise
        task.uncancel()  # type: ignore[union-attr]
        return True
    finally:
        watcher.stop()
        unwatch_disconnect(req.receive)
    return False
