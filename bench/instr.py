"""Instructions and system calls per request: figures the machine's other load does not move.

    .venv/bin/python -m bench.instr --tree /path/a --tree /path/b [--scenario messages] [--conns 1 64] [-n 400]

For each source tree and scenario: orgate runs under `valgrind --tool=callgrind --instr-atstart=no` (user-space
instructions of every thread: the event loop, aiosqlite's, the access log's) and, separately, under
`strace -f -c` (system calls: the kernel's share of the cost, which callgrind does not count). A fixed
number of requests is sent with `conns` keep-alive connections after a warm-up; counting is switched on
only around them (`callgrind_control -i on/off`; strace's counts are read as a difference between a
warm-up-only run and a run with the measured requests). Writes bench/results/instr-<timestamp>.json and,
with --annotate, callgrind's own function summary next to it.

Caveat, measured on the shared 2-core machine: under valgrind a request takes ~100x longer, so the timers
that run whatever the traffic (ledger flush every 0.5 s, key-cache poll every 1 s) add a share that depends on
how slow valgrind was that minute; the idle-rate subtraction is only as good as the idle stretch is typical.
Use callgrind for where instructions go (--annotate), strace's counts for comparisons.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.fake_upstream import FakeUpstream, wait_http
from bench.gateways import Orgate
from bench.sse_client import _one, build_request
from bench.suite import GATEWAY_CPU, RESULTS, scenarios, scratch_upstream

REPO = Path(__file__).resolve().parent.parent
IDLE_SECONDS = 8.0


async def load(port: int, request: bytes, conns: int, total: int) -> int:
    """`total` requests over `conns` keep-alive connections; returns how many got a 2xx."""
    ok = 0
    per = [total // conns + (1 if i < total % conns else 0) for i in range(conns)]

    async def one_conn(n: int) -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        try:
            for _ in range(n):
                try:
                    t = await asyncio.wait_for(_one(reader, writer, request), 120)
                    ok += 200 <= t.status < 300
                except (ConnectionError, asyncio.IncompleteReadError) as e:
                    print(f"load: {e!r}; reconnecting", file=sys.stderr)
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
        finally:
            writer.close()

    await asyncio.gather(*(one_conn(n) for n in per if n))
    return ok


class Traced(Orgate):
    def __init__(self, *a, tree: Path, wrap: list[str], **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self.env["PYTHONPATH"] = str(tree)
        self.wrap = wrap

    def start(self) -> None:
        if not self.keys:
            self.create_keys()
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["taskset", "-c", str(self.cpu), *self.wrap, sys.executable, "-m", "orgate",
                                      "serve"], env=self.env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        wait_http(self.url("/health"), timeout=300, proc=self.proc)

    def stop(self) -> None:
        # strace writes its counts when its tracee exits: end the traced server, not the tracer.
        if self.proc is not None and self.wrap[0] == "strace":
            from bench.procstat import tree

            for pid in tree(self.proc.pid)[1:2]:
                os.kill(pid, 15)
            self.proc.wait(30)
        super().stop()


def quiet(gw: Orgate, tmp: Path) -> None:
    """Under valgrind a request takes ~100x longer, so the timers that run whatever the traffic would weigh
    ~100x more per request than they do: push them out of the measured stretch (ledger rows still flush,
    by batch size, so their cost per request stays in)."""
    site = tmp / "quiet-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text("import orgate.keyauth as k\nk.POLL_S = 3600.0\n")
    gw.env["PYTHONPATH"] = f"{gw.env['PYTHONPATH']}:{site}"
    gw.env.update({"ORGATE_LEDGER__FLUSH_INTERVAL_SECONDS": "3600", "ORGATE_LEDGER__BATCH_SIZE": "100",
                   "ORGATE_BUDGETS__SWEEP_INTERVAL_SECONDS": "3600", "ORGATE_ALERTS__POLL_SECONDS": "3600",
                   "ORGATE_KEYS__CACHE_TTL_SECONDS": "3600"})


def strace_calls(path: Path) -> dict[str, int]:
    calls: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and not line.startswith("100.00"):
            name = parts[-1]
            n = int(parts[3])
            calls[name] = calls.get(name, 0) + n
    return calls


def measure(tree: Path, tmp: Path, up: FakeUpstream, port: int, sc, conns: int, n: int, key: str,  # type: ignore[no-untyped-def]
            tool: str, annotate: bool) -> dict:
    tag = f"{tree.name}-{sc.name}-c{conns}-{tool}"
    out_file = tmp / f"{tag}.out"
    if tool == "callgrind":
        wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_file}"]
    else:
        wrap = ["strace", "-f", "-c", "-o", str(out_file)]
    # A data dir per tree: trees may differ in migrations, and one migrated ahead refuses the other.
    gw = Traced(tmp / f"data-{tree.name}", port, up, variant=tag, cpu=GATEWAY_CPU, tree=tree, wrap=wrap)
    if tool == "callgrind":
        quiet(gw, tmp)
    gw.start()
    try:
        request = build_request("127.0.0.1", port, sc.path, sc.body, {**sc.extra_headers, **gw.headers(key)})
        asyncio.run(load(port, request, min(conns, 16), 64))  # warm-up: pools, caches, leases
        idle_secs = 0.0
        if tool == "callgrind":
            # Timers (ledger flush, key poll) run whether or not requests come, and valgrind's speed depends on
            # the machine's load: count an idle stretch first and subtract its rate over the measured stretch.
            ctl = ["callgrind_control"]
            subprocess.run([*ctl, "-i", "on", str(gw.pid)], capture_output=True, check=True)
            t0 = time.monotonic()
            time.sleep(IDLE_SECONDS)
            subprocess.run([*ctl, "-d", "idle", str(gw.pid)], capture_output=True, check=True)
            idle_secs = time.monotonic() - t0
        t0 = time.monotonic()
        ok = asyncio.run(load(port, request, conns, n))
        secs = time.monotonic() - t0
        if tool == "callgrind":
            subprocess.run([*ctl, "-d", "load", str(gw.pid)], capture_output=True, check=True)
            subprocess.run([*ctl, "-i", "off", str(gw.pid)], capture_output=True, check=True)
    finally:
        gw.stop()
    res = {"tree": str(tree), "scenario": sc.name, "conns": conns, "n": n, "ok": ok, "key": key, "seconds": round(secs, 1)}
    if tool == "callgrind":
        parts = {}
        for p in tmp.glob(out_file.name + ".*"):
            text = p.read_text(errors="replace")
            trigger = re.search(r"^desc: Trigger: dump (\w+)", text, re.M)
            m = re.search(r"^totals:\s*(\d+)", text, re.M) or re.search(r"^summary:\s*(\d+)", text, re.M)
            if trigger and m:
                parts[trigger.group(1)] = int(m.group(1))
        idle_rate = parts.get("idle", 0) / idle_secs if idle_secs else 0.0
        res["instructions_raw"] = parts.get("load", 0)
        res["idle_instructions_per_s"] = round(idle_rate)
        res["instructions"] = round(parts.get("load", 0) - idle_rate * secs)
        if annotate:
            ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", *map(str, tmp.glob(out_file.name + "*"))],
                                 capture_output=True, text=True).stdout
            (RESULTS / f"callgrind-{tag}.txt").write_text("\n".join(ann.splitlines()[:80]))
    else:
        res["syscalls"] = strace_calls(out_file)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.instr")
    ap.add_argument("--tree", action="append", help="source tree (repeatable; default: this repo)")
    ap.add_argument("--scenario", nargs="+", default=["messages"])
    ap.add_argument("--conns", type=int, nargs="+", default=[1, 64])
    ap.add_argument("-n", type=int, default=400, help="measured requests per run")
    ap.add_argument("--key", default="budget", choices=["budget", "nobudget"])
    ap.add_argument("--tools", nargs="+", default=["strace"], help="strace and/or callgrind (see the module doc)")
    ap.add_argument("--annotate", action="store_true")
    ap.add_argument("--base-port", type=int, default=18600)
    ap.add_argument("--label", default="")
    a = ap.parse_args(argv)
    trees = [Path(t).resolve() for t in (a.tree or [str(REPO)])]
    ts, tmp, up = scratch_upstream("instr", a.base_port)
    out: dict = {"started": ts, "args": vars(a), "loadavg_start": os.getloadavg(), "rows": []}
    try:
        for sc in [s for s in scenarios() if s.name in a.scenario]:
            for c in a.conns:
                for tool in a.tools:
                    # The strace baseline: the same start-up and warm-up with no measured requests.
                    for tree in trees:
                        r = measure(tree, tmp, up, a.base_port + 1, sc, c, a.n, a.key, tool, a.annotate)
                        if tool == "strace":
                            base = measure(tree, tmp, up, a.base_port + 1, sc, c, 0, a.key, tool, False)
                            diff = {k: v - base["syscalls"].get(k, 0) for k, v in r["syscalls"].items()}
                            r["syscalls_per_request"] = {k: round(v / a.n, 2) for k, v in
                                                         sorted(diff.items(), key=lambda kv: -kv[1]) if v > 0}
                            r["syscalls_total_per_request"] = round(sum(v for v in diff.values() if v > 0) / a.n, 2)
                            del r["syscalls"]
                        else:
                            r["instructions_per_request"] = round(r["instructions"] / a.n)
                        out["rows"].append(r)
                        print(json.dumps({k: v for k, v in r.items() if k != "syscalls_per_request"}),
                              file=sys.stderr, flush=True)
    finally:
        up.stop()
    out["loadavg_end"] = os.getloadavg()
    path = RESULTS / f"instr-{ts}{'-' + a.label if a.label else ''}.json"
    path.write_text(json.dumps(out, indent=1))
    for r in out["rows"]:
        fig = r.get("instructions_per_request") or r.get("syscalls_total_per_request")
        what = "instr/req" if "instructions_per_request" in r else "syscalls/req"
        print(f"{Path(r['tree']).name:12} {r['scenario']:16} c={r['conns']:<3} {what:12} {fig}")
    print(f"load {out['loadavg_start']} -> {out['loadavg_end']}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
