"""RSS of orgate source trees side by side: at start, and peak after each load that issue 18 bounds.

    .venv/bin/python -m bench.rss /path/to/tree-a /path/to/tree-b
    .venv/bin/python -m bench.rss tree-a tree-a:MALLOC_ARENA_MAX=2   (the same tree with an environment variable)

Each tree's orgate starts in turn (budgeted key, ledger on SQLite), takes 4 s of wrk load per case (messages
c=1 and c=64, messages_stream c=64, claude_code_150k c=256) and reports VmRSS and VmHWM after each, then
VmRSS once more after 12 s idle (what the process gives back after the burst).
"""

from __future__ import annotations

import json
import sys
import time

from bench.gateways import Orgate
from bench.suite import GATEWAY_CPU, run_wrk, scenarios, scratch_upstream

CASES = (("messages", 1), ("messages", 64), ("messages_stream", 64), ("claude_code_150k", 256))


def main(argv: list[str] | None = None) -> int:
    trees = (argv if argv is not None else sys.argv[1:]) or ["."]
    _, tmp, up = scratch_upstream("rss", 18800)
    try:
        for i, spec in enumerate(trees):
            tree, *env = spec.split(":")
            gw = Orgate(tmp / f"t{i}", 18801 + i, up, cpu=GATEWAY_CPU, variant=f"t{i}")
            gw.env["PYTHONPATH"] = tree
            gw.env.update(kv.split("=", 1) for kv in env)
            gw.start()
            try:
                out: dict = {"start": gw.memory()}
                by_name = {s.name: s for s in scenarios()}
                for name, c in CASES:
                    s = by_name[name]
                    w = run_wrk(gw.url(s.path), s.body, {**s.extra_headers, **gw.headers("budget")}, c, 4,
                                tmp / "wrk", gw)
                    out[f"{name}-c{c}"] = {"rps": w.get("rps"), "errors": w.get("error_count"), **gw.memory()}
                time.sleep(12)  # past one malloc_trim period (orgate/server/trim.py)
                out["idle"] = gw.memory()
            finally:
                gw.stop()
            print(spec, json.dumps(out), flush=True)
    finally:
        up.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
