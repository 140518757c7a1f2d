"""Turns on sign-in through the organization's IdP when `sso` is configured: the service, the auth seam
(gateway tokens next to keys) and the protocol's routes. Without `sso`, nothing here exists at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orgate.server.app import App


def register(app: App) -> None:
    if not app.settings.sso.enabled:
        return
    from orgate.server import sso_browser, sso_client, sso_oauth
    from orgate.sso.auth import GatewayAuth
    from orgate.sso.service import SsoService

    app.sso = SsoService(app.settings.sso, app.engine, app.keys, app.secret,  # type: ignore[attr-defined]
                         app.settings.keys.prefix)
    app.auth = GatewayAuth(app.auth, app.sso)  # type: ignore[assignment,attr-defined]
    sso_oauth.register(app)
    sso_browser.register(app)
    sso_client.register(app)
