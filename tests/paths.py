"""Where the shared project documents live: `../shared` beside the checkout (override: $ORGATE_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ORGATE_SHARED") or REPO.parent / "shared")
SEEDS = SHARED / "seeds"
CLIENT_CAPTURES = SHARED / "spec" / "clients"
