"""The shipped Grafana dashboard only queries metrics orgate exports (names drift silently otherwise)."""

from __future__ import annotations

import json
import re

from orgate.observe.metrics import Metrics
from tests.paths import REPO


def test_dashboard_queries_only_exported_metrics():
    dash = json.loads((REPO / "deploy" / "grafana" / "orgate.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\borgate_[a-z_]+", e)}
    exported = set(Metrics().registry._names_to_collectors)  # every declared series name, with or without data
    assert used and used <= exported, used - exported
    # every metric family is on the dashboard somewhere
    families = {n.removesuffix("_total") for n in exported if not n.endswith(("_created", "_bucket", "_count", "_sum"))}
    shown = {u.removesuffix("_total").removesuffix("_bucket") for u in used}
    assert families <= shown, families - shown
