"""After start the gateway's cyclic collector skips what start loaded and runs less often (server/app.gc_tuned);
`server.gc_threshold: 0` leaves Python's defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, gc, json
from orgate.config import load_settings
from orgate.server.app import create_app

async def main():
    before = gc.get_threshold()
    app = create_app(load_settings())
    await app.startup()
    try:
        print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
    finally:
        await app.shutdown()

asyncio.run(main())
"""


def _probe(tmp_path: Path, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORGATE_", "OTEL_", "DATABASE_URL", "REDIS"))}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, "ORGATE_DATA_DIR": str(tmp_path), **env},
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_start_is_frozen_and_the_threshold_raised(tmp_path: Path) -> None:
    r = _probe(tmp_path)
    assert r["after"] == [10_000, 10, 10] and r["before"] != r["after"]
    assert r["frozen"] > 10_000  # modules, catalog, tables: all out of the collector's scans


def test_zero_keeps_pythons_collector(tmp_path: Path) -> None:
    r = _probe(tmp_path, ORGATE_SERVER__GC_THRESHOLD="0")
    assert r["after"] == r["before"] and r["frozen"] == 0
