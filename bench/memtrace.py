"""Where the Python heap goes at a load's peak: orgate in this process under tracemalloc, wrk outside.

    .venv/bin/python -m bench.memtrace [--scenario claude_code_150k] [--conns 256] [--seconds 4] [--top 25]
    .venv/bin/python -m bench.memtrace --scenario messages --conns 64 --seconds 10 --growth 12


The gateway runs as `orgate serve` would (uvicorn, uvloop, orgate's guarded httptools protocol, budgeted key,
ledger on SQLite) but inside this process, so `tracemalloc` sees every allocation; a sampler keeps the
snapshot taken when the traced heap was largest and prints its biggest allocation sites (grouped by the
innermost frames of the stack). With `--growth N` it runs N chunks of load instead and prints what the heap
gained between the end of the first chunk and the end of the last (a soak's growth, by allocation site).
tracemalloc makes the gateway several times slower, so throughput figures
from here mean nothing; the heap's composition is what this is for. RSS figures: bench/rss.py.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from bench.gateways import Orgate
from bench.suite import run_wrk, scenarios, scratch_upstream


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def mallinfo() -> dict[str, float]:
    """glibc's own accounting (all arenas): heap in use, heap free but kept, and mmapped chunks, in MB."""
    try:
        f = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return {}
    f.restype = _MallInfo2
    m = f()
    return {"heap_in_use_mb": round(m.uordblks / 2**20, 1), "heap_free_kept_mb": round(m.fordblks / 2**20, 1),
            "mmapped_mb": round(m.hblkhd / 2**20, 1)}


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def _serve_and_load(gw: Orgate, args: argparse.Namespace, tmp: Path) -> tuple[Any, int, dict]:
    import uvicorn

    from orgate.config import load_settings
    from orgate.server.app import create_app
    from orgate.server.guard import guarded_protocol, read_limits

    s = load_settings()
    app = create_app(s)
    config = uvicorn.Config(app, host="127.0.0.1", port=gw.port, loop="none", ws="none", lifespan="on",
                            http=guarded_protocol(read_limits(s.server)), log_level="warning", access_log=False,
                            proxy_headers=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    sc = next(x for x in scenarios() if x.name == args.scenario)
    headers = {**sc.extra_headers, **gw.headers("budget")}
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    print(f"before the load: VmRSS {_vm('VmRSS')} MB, {mallinfo()}", flush=True)
    best: dict[str, Any] = {"size": 0, "snap": None}

    async def sample() -> None:
        while True:
            await asyncio.sleep(args.every)
            if args.no_trace:  # the largest RSS, with glibc's view of it
                rss = _vm("VmRSS")
                if rss > best.get("rss", 0):
                    # the ledger rows waiting for the writer: at high rates its backlog is what load adds
                    best.update(rss=rss, malloc=mallinfo(), ledger_rows=len(app.writer._rows))
                continue
            cur = tracemalloc.get_traced_memory()[0]
            if cur > best["size"]:
                best["size"], best["snap"], best["rss"] = cur, tracemalloc.take_snapshot(), _vm("VmRSS")

    def load() -> dict:
        return run_wrk(gw.url(sc.path), sc.body, headers, args.conns, args.seconds, tmp / "wrk")

    if args.growth:
        w = await asyncio.to_thread(load)
        first, n = tracemalloc.take_snapshot(), w.get("ok", 0)
        for _ in range(args.growth - 1):
            w = await asyncio.to_thread(load)
            n += w.get("ok", 0)
        best.update(snap=tracemalloc.take_snapshot(), first=first, size=tracemalloc.get_traced_memory()[0],
                    rss=_vm("VmRSS"), requests=n)
    else:
        sampler = asyncio.create_task(sample())
        w = await asyncio.to_thread(load)
        sampler.cancel()
    peak = tracemalloc.get_traced_memory()[1]
    server.should_exit = True
    await task
    return best, base, {"wrk_ok": w.get("ok"), "errors": w.get("error_count"),
                        "traced_peak_mb": round(peak / 2**20, 1), "vm_hwm_mb": _vm("VmHWM")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="claude_code_150k")
    ap.add_argument("--conns", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--every", type=float, default=0.05, help="sampling period of the traced heap (s)")
    ap.add_argument("--frames", type=int, default=3, help="stack frames that name an allocation site")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-trace", action="store_true",
                    help="no tracemalloc (full speed): report the largest VmRSS and glibc's heap figures then")
    ap.add_argument("--growth", type=int, default=0, help="chunks of load; print the heap's growth after the first")
    args = ap.parse_args(argv)
    _, tmp, up = scratch_upstream("memtrace", 18850)
    try:
        gw = Orgate(tmp, 18851, up, variant="memtrace")
        gw.create_keys()
        os.environ.update(gw.env)
        os.chdir(gw.dir)
        if not args.no_trace:
            tracemalloc.start(max(args.frames, 1))
        import uvloop

        best, base, info = uvloop.run(_serve_and_load(gw, args, tmp))
    finally:
        up.stop()
    if args.no_trace:
        print(f"{args.scenario} c={args.conns}: {info}; largest VmRSS {best.get('rss')} MB, then {best.get('malloc')}, "
              f"ledger rows waiting {best.get('ledger_rows')}; "
              f"after the load {mallinfo()}")
        return 0
    snap = best["snap"]
    print(f"{args.scenario} c={args.conns}: {info}; traced at the largest sample "
          f"{best['size'] / 2**20:.1f} MB (before the load {base / 2**20:.1f} MB), VmRSS then {best.get('rss')} MB")
    if snap is None:
        return 1
    skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
    snap = snap.filter_traces(skip)
    if args.growth:
        print(f"growth over {best['requests']} requests, from the end of chunk 1 to the end of chunk {args.growth}:")
        stats = snap.compare_to(best["first"].filter_traces(skip), "traceback")
        for st in stats[: args.top]:
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(st.traceback))
            print(f"{st.size_diff / 2**10:+10.1f} KB {st.count_diff:+8d}  {where}")
        return 0
    for st in snap.statistics("traceback")[: args.top]:
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(st.traceback))
        print(f"{st.size / 2**20:8.2f} MB {st.count:7d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
