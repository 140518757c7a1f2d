"""`previous_response_id` on /v1/responses, from an opt-in store (`response_store.enabled`).

Codex sends `store: false` and its whole history, so orgate needs no state for it. Callers that chain turns
with `previous_response_id` (the OpenAI SDKs' default `store` is true) need the earlier conversation: with
the store on, every /v1/responses answer whose request did not say `store: false` is kept as the full item
list (the request's input, previous turns included, then the response's output) under its response id, for
`retention_hours`, readable only with the API key that created it. A request naming a stored id gets those
items put before its own input. An unknown, expired or other key's id is the same 400
`previous_response_not_found` (OpenAI's code), so ids of other keys cannot be probed. Reasoning items keep
their sealed thinking, bound to the same key. Expired rows are deleted at most once a minute.

The write starts before the answer's last bytes leave (a stream's response.completed included) and a
request naming a response whose write is still running on this instance waits for it, so a client that
chains at once finds it. Across instances a chained request that arrives within the write's few
milliseconds can still miss it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from orgate.errors import InvalidRequest
from orgate.governance.keys import KeyRecord, now_ms
from orgate.store.responses_repo import ResponsesRepo

if TYPE_CHECKING:
    from orgate.server.app import App

_PURGE_EVERY_MS = 60_000


class ResponseStore:
    def __init__(self, app: App) -> None:
        self._settings = app.settings.response_store
        self._repo = ResponsesRepo(app.engine)
        self._log = app.log
        self._last_purge = 0
        self._pending: dict[str, asyncio.Task[Any]] = {}  # response id -> its write, while it runs

    async def expand(self, key: KeyRecord, body: dict[str, Any]) -> dict[str, Any]:
        """The request with the stored conversation before its input; unchanged without previous_response_id."""
        prev = body.get("previous_response_id")
        if not prev:
            return body
        if not self._settings.enabled:
            raise InvalidRequest("`previous_response_id` needs the response store, which is off on this gateway "
                                 "(response_store.enabled); send the full conversation in `input` with "
                                 "`store: false`", param="previous_response_id")
        if isinstance(prev, str) and prev in self._pending:
            await asyncio.shield(self._pending[prev])
        items = await self._repo.get(str(prev), key.id, now_ms()) if isinstance(prev, str) else None
        if items is None:
            raise InvalidRequest(f"Previous response with id '{str(prev)[:80]}' not found.",
                                 param="previous_response_id", code="previous_response_not_found")
        rest = {k: v for k, v in body.items() if k != "previous_response_id"}
        return {**rest, "input": items + _items(body.get("input"))}

    def remember(self, key: KeyRecord, body: dict[str, Any], response: dict[str, Any] | None) -> None:
        """Start keeping a completed response when the store is on and the request allows it."""
        if (not self._settings.enabled or response is None or body.get("store") is False
                or response.get("status") != "completed"):
            return
        rid = str(response["id"])
        items = _items(body.get("input")) + [i for i in response.get("output") or [] if isinstance(i, dict)]
        task = asyncio.get_running_loop().create_task(self._put(rid, key.id, items))
        self._pending[rid] = task
        task.add_done_callback(lambda _: self._pending.pop(rid, None))

    def watch(self, encoder: Any, key: KeyRecord, body: dict[str, Any]) -> Any:
        """A stream encoder whose finish() starts the write before the final event is sent."""
        return _Remembering(encoder, self, key, body) if self._settings.enabled else encoder

    async def _put(self, response_id: str, key_id: int, items: list[Any]) -> None:
        now = now_ms()
        try:
            await self._repo.put(response_id, key_id, items, now, now + int(self._settings.retention_hours * 3.6e6))
            if now - self._last_purge >= _PURGE_EVERY_MS:
                self._last_purge = now
                await self._repo.purge(now)
        except Exception:  # the answer is already out; a lost store entry shows as not_found later
            self._log.exception("response store: could not keep %s", response_id)


class _Remembering:
    def __init__(self, inner: Any, store: ResponseStore, key: KeyRecord, body: dict[str, Any]) -> None:
        self._inner, self._store, self._key, self._body = inner, store, key, body

    def feed(self, event: dict[str, Any]) -> bytes:
        return self._inner.feed(event)  # type: ignore[no-any-return]

    def finish(self) -> bytes:
        out: bytes = self._inner.finish()
        self._store.remember(self._key, self._body, getattr(self._inner, "final", None))
        return out

    def error(self, kind: str, message: str, status: int) -> bytes:
        return self._inner.error(kind, message, status)  # type: ignore[no-any-return]


def _items(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return list(raw) if isinstance(raw, list) else []
