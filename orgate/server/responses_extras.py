"""Codex's built-in OpenAI provider beyond `POST /v1/responses`: its WebSocket attempt and `/responses/compact`.

- `GET /v1/responses` is Codex's WebSocket upgrade (`openai-beta: responses_websockets=...`). orgate speaks
  Responses over HTTP only; `426 Upgrade Required` makes Codex 0.171 fall back to HTTP at once (measured: one
  attempt, then the POST in the same second; a 404 made it retry five times over ~7 s first, and earlier
  releases gave up after seven failed attempts). The server runs without a WebSocket implementation
  (cli.py: `ws="none"`), so the upgrade always arrives here as a plain GET.
- `previous_response_id` is served from the opt-in response store (server/response_store.py), set up here.
- `POST /v1/responses/compact` summarizes the conversation with Claude (dialects/openai_responses/compaction.py)
  through the same flow as /v1/responses (Pipeline.serve with openai_api.TranslatingPlan).
The compaction Codex 0.171 actually uses, a `compaction_trigger` item on /v1/responses, is answered by the
Responses dialect itself (openai_api.ResponsesDialect).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orgate.dialects.openai_responses import compaction
from orgate.errors import GatewayError
from orgate.routing.catalog import ModelRoute
from orgate.server import openai_api
from orgate.server.asgi import Request, respond
from orgate.server.render import error_headers, openai_error
from orgate.server.response_store import ResponseStore

if TYPE_CHECKING:
    from orgate.server.app import App


class CompactDialect:
    api, endpoint = "openai-responses", "responses/compact"

    def to_anthropic(self, app: App, turn: openai_api.Turn, route: ModelRoute) -> tuple[dict[str, Any], list[str]]:
        body = {k: v for k, v in turn.body.items() if k != "stream"}  # answered as one JSON object
        return compaction.summary_request(body, openai_api.responses_options(route, turn.key), app.envelope)

    def from_anthropic(self, app: App, turn: openai_api.Turn, message: dict[str, Any]) -> dict[str, Any]:
        return compaction.compact_response(message, created=turn.created, request=turn.body, envelope=app.envelope,
                                           key_id=str(turn.key.id))

    def encoder(self, app: App, turn: openai_api.Turn) -> tuple[openai_api.Encoder, bytes]:
        raise AssertionError("/responses/compact is never streamed")


COMPACT = CompactDialect()


def register(app: App) -> None:
    app.response_store = ResponseStore(app)  # type: ignore[attr-defined]
    app.routes[("GET", "/v1/responses")] = websocket_attempt
    app.routes[("POST", "/v1/responses/compact")] = compact


async def websocket_attempt(app: App, req: Request) -> None:
    err = GatewayError("orgate serves the Responses API over HTTP only: send POST /v1/responses.", status=426,
                       kind="invalid_request_error")
    await respond(req.send, err.status, openai_error(err, req.request_id), error_headers(err, req.request_id))


async def compact(app: App, req: Request) -> None:
    await app.pipeline.serve(req, openai_api.TranslatingPlan(app, req, COMPACT))
