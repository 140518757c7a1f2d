"""Surfaces beyond the Anthropic core (OpenAI dialects, usage, admin) hook into the route table here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orgate.server.app import App


def register(app: App) -> None:
    from orgate.server import admin_api, openai_api, ops_api, responses_extras, sso_routes, usage_api

    sso_routes.register(app)
    ops_api.register(app)
    usage_api.register(app)
    openai_api.register(app)
    responses_extras.register(app)
    admin_api.register(app)
