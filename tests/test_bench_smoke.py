"""CI keeps the benchmark suite working: a quick run must serve requests in every scenario.

Numbers are never asserted here (they live in bench/results); only that the suite itself runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (shutil.which("wrk") and (shutil.which("nginx") or Path("/usr/sbin/nginx").exists())),
                    reason="the benchmark needs Debian's nginx and wrk (scripts/test.sh installs them)")
def test_bench_quick_smoke(tmp_path):
    p = subprocess.run([sys.executable, "-m", "bench.smoke"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
