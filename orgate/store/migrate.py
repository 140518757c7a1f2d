"""`python -m orgate.store.migrate <url>`: migrations in a child process.

The server runs its migrations this way at startup so that Alembic and Mako (about 11 MB) are never
imported into the long-lived gateway process.
"""

from __future__ import annotations

import sys

from orgate.store.db import upgrade

if __name__ == "__main__":
    upgrade(sys.argv[1])
