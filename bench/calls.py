"""Function calls per request: orgate under cProfile, N requests of one scenario, counts divided by N.

    .venv/bin/python -m bench.calls [--tree PATH] [--scenario messages] [--conns 1] [-n 2000]

Wall-clock and even CPU figures move with the machine's load; call counts do not. This answers "how many
tasks, timers, regex searches, dict builds does one request cost" and which functions own the most time
under the profiler (cProfile inflates small functions, so read `tottime` as a ranking, not as a cost).
A warm-up of the same scenario runs before the profiler is reset... cProfile cannot be reset from outside,
so instead two runs are made (warm-up only, and warm-up + n) and their counts subtracted.
"""

from __future__ import annotations

import argparse
import marshal
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.fake_upstream import wait_http
from bench.gateways import Orgate
from bench.suite import GATEWAY_CPU, run_wrk, scenarios, scratch_upstream


def _profiled(gw: Orgate, out: Path, tree: str | None) -> subprocess.Popen:
    env = dict(gw.env)
    if tree:
        env["PYTHONPATH"] = tree
    log = open(gw.dir / "calls.log", "wb")
    proc = subprocess.Popen(["taskset", "-c", str(GATEWAY_CPU), sys.executable, "-m", "cProfile", "-o", str(out),
                             "-m", "orgate", "serve"], env=env, cwd=gw.dir, stdout=log, stderr=subprocess.STDOUT)
    wait_http(gw.url("/health"), timeout=60, proc=proc)
    return proc


def _stats(path: Path) -> dict:
    with open(path, "rb") as f:
        return marshal.load(f)


def _run(gw: Orgate, sc, tmp: Path, tree: str | None, conns: int, n: int, name: str) -> dict:
    out = tmp / f"{name}.prof"
    proc = _profiled(gw, out, tree)
    body_headers = {**sc.extra_headers, **gw.headers("budget")}
    done = 0
    try:
        # wrk runs for a time, not a count: run until at least n requests were answered, and record how many.
        while done < n:
            r = run_wrk(gw.url(sc.path), sc.body, body_headers, conns, 1, tmp / "wrk")
            done += r.get("ok", 0)
            if not r.get("ok") or r.get("error_count"):
                raise RuntimeError(f"errors: {r}")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    time.sleep(0.2)
    return {"requests": done, "stats": _stats(out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.calls")
    ap.add_argument("--tree", default=None, help="orgate source tree put first on PYTHONPATH")
    ap.add_argument("--scenario", default="messages")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--base-port", type=int, default=18900)
    a = ap.parse_args(argv)
    ts, tmp, up = scratch_upstream("calls", a.base_port)
    sc = next(s for s in scenarios() if s.name == a.scenario)
    gw = Orgate(tmp / "gw", a.base_port + 1, up, cpu=GATEWAY_CPU)
    try:
        gw.create_keys()
        warm = _run(gw, sc, tmp, a.tree, a.conns, 300, "warm")
        full = _run(gw, sc, tmp, a.tree, a.conns, 300 + a.n, "full")
    finally:
        up.stop()
    n = full["requests"] - warm["requests"]
    rows = []
    for func, (_cc, nc, tt, _ct, _callers) in full["stats"].items():
        w = warm["stats"].get(func)
        wnc, wtt = (w[1], w[2]) if w else (0, 0.0)
        calls, tot = (nc - wnc) / n, (tt - wtt) / n * 1e6
        if calls > 0.05 or tot > 0.5:
            fname, line, fn = func
            where = fname.split("site-packages/")[-1].split("/orgate/")[-1] if fname != "~" else ""
            rows.append((tot, calls, f"{fn} ({where}:{line})" if where else fn))
    rows.sort(reverse=True)
    print(f"{a.scenario} c={a.conns}: {n} requests profiled (difference of two runs); per request:")
    print(f"{'us tottime':>10} {'calls':>8}  function")
    for tot, calls, name in rows[:a.top]:
        print(f"{tot:10.2f} {calls:8.2f}  {name}")
    total_calls = sum(r[1] for r in rows)
    print(f"function calls per request (listed rows): {total_calls:.0f}")
    for key in ("create_task", "call_later", "call_at", "search", "sub", "Timeout", "__init__"):
        c = sum(r[1] for r in rows if key in r[2].split(" (")[0])
        print(f"  {key}: {c:.2f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
