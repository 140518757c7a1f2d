"""orgate's ASGI app as a module attribute, for ASGI servers other than `orgate serve` (e.g. granian)."""

from orgate.config import load_settings
from orgate.server.app import create_app

app = create_app(load_settings(None))
