"""A soak on its own: orgate serve under wrk (c=64 by default) in 10 s chunks, RSS sampled after each chunk.

    .venv/bin/python -m bench.soak [--requests 1000000] [--max-seconds 1200] [--key budget|nobudget]
                                   [--scenario messages] [--conns 64] [--out bench/results/soak-....json]

Issue 18's criterion: RSS flat within 10 % from the sample at 10 % of the requests to the end. Same gateway
setup as the suite (`python -m bench`: budgeted key, ledger on SQLite, nginx fake upstream); this runs only the
soak, so it can be repeated on a tree without the whole matrix. Each sample: requests so far, VmRSS, VmHWM,
threads, the ledger's SQLite file sizes (the WAL grows until a checkpoint), and the access log's size.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.gateways import Orgate
from bench.suite import GATEWAY_CPU, RESULTS, run_wrk, scenarios, scratch_upstream


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def _size_mb(paths: list[Path]) -> float:
    return round(sum(p.stat().st_size for p in paths if p.exists()) / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--max-seconds", type=float, default=1e9)
    ap.add_argument("--chunk-seconds", type=float, default=10.0)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--key", default="budget")
    ap.add_argument("--scenario", default="messages")
    ap.add_argument("--tree", default=None, help="orgate source tree to run (PYTHONPATH); default: installed")
    ap.add_argument("--env", action="append", default=[], help="K=V for the gateway's environment")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    ts, tmp, up = scratch_upstream("soak", 18870)
    samples: list[dict] = []
    try:
        gw = Orgate(tmp, 18871, up, cpu=GATEWAY_CPU, variant="soak")
        if args.tree:
            gw.env["PYTHONPATH"] = args.tree
        gw.env.update(kv.split("=", 1) for kv in args.env)
        gw.start()
        try:
            sc = next(s for s in scenarios() if s.name == args.scenario)
            headers = {**sc.extra_headers, **gw.headers(args.key)}
            start = {"requests": 0, "t_s": 0.0, **gw.memory(), "threads": _threads(gw.pid)}
            print(json.dumps(start), flush=True)
            total, t0 = 0, time.monotonic()
            while total < args.requests and time.monotonic() - t0 < args.max_seconds:
                r = run_wrk(gw.url(sc.path), sc.body, headers, args.conns, args.chunk_seconds, tmp / "wrk", gw)
                total += r.get("ok", 0)
                s = {"requests": total, "t_s": round(time.monotonic() - t0, 1), **gw.memory(),
                     "threads": _threads(gw.pid), "rps": r.get("rps"), "errors": r.get("error_count"),
                     "db_mb": _size_mb(list(gw.dir.glob("orgate.db*"))),
                     "logs_mb": _size_mb(list(gw.dir.glob("*.log")))}
                samples.append(s)
                print(json.dumps(s), flush=True)
                if not r.get("ok"):
                    break
        finally:
            gw.stop()
    finally:
        up.stop()
    if not samples:
        return 1
    ref = next((s for s in samples if s["requests"] >= samples[-1]["requests"] // 10), samples[0])
    end = samples[-1]
    growth = round((end["rss_mb"] / ref["rss_mb"] - 1) * 100, 1)
    summary = {"start": start, "reference": ref, "end": end, "growth_pct": growth,
               "peak_rss_mb": max(s["peak_rss_mb"] for s in samples), "key": args.key, "env": args.env}
    print(json.dumps(summary), flush=True)
    out = Path(args.out) if args.out else RESULTS / f"soak-{ts}.json"
    out.write_text(json.dumps({**summary, "samples": samples}, indent=1))
    print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
