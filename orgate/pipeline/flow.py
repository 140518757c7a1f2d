"""What a surface gives `Pipeline.serve`: the client it answers and the plan of what differs.

    Pipeline.serve(client, plan):
      read body -> authenticate -> plan.parse (may hand over to another plan: the OpenAI relay)
      -> limits (plan.limited) -> plan.prepare (fallbacks, translation; what the budget must cover)
      -> budget reserve -> plan.open (build the upstream call, route it) -> plan.answer | plan.relay
      whatever ends it (success, GatewayError, client gone, cancellation, an unexpected exception, a store
      outage): the error rendered once in the plan's dialect if nothing was sent, settlement, the access line.

A plan knows its dialect (how to parse, how to build the call, how to probe and relay a stream, how to render
an error); it never catches a client disconnect, writes the access log or settles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from orgate.errors import GatewayError

if TYPE_CHECKING:
    from orgate.pipeline import Exchange
    from orgate.routing.router import Opened


class Client(Protocol):
    """The caller's side of one HTTP exchange (server/asgi.Request)."""

    request_id: str
    headers: dict[str, str]
    receive: Callable[[], Awaitable[dict[str, Any]]]
    key: Any  # the KeyRecord the server's key-before-body check found (server/preauth.py), or None

    async def read_body(self, limit: int) -> bytes: ...

    def release_body(self) -> None: ...


@dataclass(slots=True)
class Budget:
    """What the budget reservation must cover: the bytes sent, the max_tokens asked, and the Anthropic body
    when `raw` is another dialect's (near a limit its input is counted by the provider)."""

    raw: bytes
    max_tokens: int
    body: dict[str, Any] | None = None


class Plan(Protocol):
    api: str
    endpoint: str
    limited: bool  # rate and concurrency limits apply (count_tokens: no)

    async def parse(self, ex: Exchange, raw: bytes) -> Plan: ...
    async def prepare(self, ex: Exchange, raw: bytes) -> Budget | None: ...
    async def open(self, ex: Exchange, allowed: int | None) -> Opened: ...
    async def answer(self, ex: Exchange, opened: Opened) -> None: ...
    async def relay(self, ex: Exchange, opened: Opened) -> None: ...
    async def reply_error(self, error: GatewayError) -> None: ...
    def release(self) -> None: ...  # the request is upstream: drop references to its body
