"""`orgate serve --workers 1` and `--workers 2` side by side, in one run, repeated (bench/README.md).

On a 2-CPU machine the load generator and the upstream need a CPU of their own, so both gateways are pinned to
the same single CPU: the figure that matters is CPU per request (does a second process cost more per
request?) and whether both workers take requests, not throughput. The ledger (SQLite) says which worker
served each request: request ids start with a per-process prefix.

    .venv/bin/python -m bench.workers [--repeat 3] [--duration 8] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

from bench import bodies
from bench.fake_upstream import FakeUpstream
from bench.gateways import Orgate
from bench.suite import GATEWAY_CPU, RESULTS, UPSTREAM_CPU, run_wrk


def served_by(db: Path, since_ms: int) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT substr(request_id, 1, 16), COUNT(*) FROM ledger WHERE ts_ms >= ? GROUP BY 1",
                            (since_ms,)).fetchall()
    return {prefix: n for prefix, n in rows}


def wait_workers(url: str, n: int, timeout: float = 120) -> None:
    """Until n processes answer (each stamps its own request-id prefix on a 401)."""
    import concurrent.futures as cf
    import urllib.error
    import urllib.request

    def prefix(_: int) -> str:
        try:
            urllib.request.urlopen(url, timeout=10)
        except urllib.error.HTTPError as e:
            return (e.headers.get("x-request-id") or "")[:16]
        return ""

    deadline = time.time() + timeout
    while time.time() < deadline:
        with cf.ThreadPoolExecutor(16) as pool:
            if len(set(pool.map(prefix, range(32))) - {""}) >= n:
                return
        time.sleep(0.5)
    raise RuntimeError(f"fewer than {n} workers answered")


def one(tmp: Path, upstream: FakeUpstream, workers: int, args: argparse.Namespace, key: str) -> dict:
    gw = Orgate(tmp, args.port + 1, upstream, variant=f"w{workers}", cpu=GATEWAY_CPU, workers=workers)
    gw.start()
    try:
        wait_workers(gw.url("/v1/models"), workers)
        body = bodies.dump(bodies.small_messages())
        run_wrk(gw.url("/v1/messages"), body, gw.headers(key), args.concurrency, 2, tmp / "wrk")  # warm both
        since = int(time.time() * 1000)
        r = run_wrk(gw.url("/v1/messages"), body, gw.headers(key), args.concurrency, args.duration, tmp / "wrk", gw)
        time.sleep(1.5)  # the ledger writers flush every 0.5 s
        share = served_by(gw.dir / "orgate.db", since)
    finally:
        gw.stop()
    return {"workers": workers, "key": key, "rps": r["rps"], "cpu_ms_per_req": r.get("cpu_ms_per_req"),
            "ok": r["ok"], "errors": r.get("error_count"), "p50_ms": r.get("latency_ms", {}).get("p50"),
            "served_by_worker": sorted(share.values(), reverse=True)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--port", type=int, default=18480)
    ap.add_argument("--key", default="nobudget", choices=["nobudget", "budget"])
    args = ap.parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    tmp = RESULTS / "tmp" / f"workers-{stamp}"
    upstream = FakeUpstream(tmp, args.port, cpu=UPSTREAM_CPU)
    upstream.start()
    runs = []
    try:
        for rep in range(args.repeat):
            for workers in ((1, 2) if rep % 2 == 0 else (2, 1)):  # alternate the order: no side always goes first
                r = one(tmp, upstream, workers, args, args.key)
                runs.append({"repeat": rep, **r})
                print(json.dumps(runs[-1]), flush=True)
    finally:
        upstream.stop()
    out = RESULTS / f"workers-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    for rep in range(args.repeat):
        pair = {r["workers"]: r for r in runs if r["repeat"] == rep}
        if pair[1]["cpu_ms_per_req"] and pair[2]["cpu_ms_per_req"]:
            ratio = pair[2]["cpu_ms_per_req"] / pair[1]["cpu_ms_per_req"]
            print(f"repeat {rep}: cpu/req 1 worker {pair[1]['cpu_ms_per_req']} ms, 2 workers {pair[2]['cpu_ms_per_req']} ms"
                  f" (x{ratio:.3f}); rps {pair[1]['rps']} vs {pair[2]['rps']}; 2-worker split {pair[2]['served_by_worker']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
