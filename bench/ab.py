"""Side by side: two orgate source trees (or env settings) in one run, interleaved A B B A, CPU per request.

    .venv/bin/python -m bench.ab --a /path/to/tree-a --b /path/to/tree-b [--scenario messages] [--conns 1 64]
    .venv/bin/python -m bench.ab --b-env ORGATE_METRICS__ENABLED=false      # one tree, two settings

Both gateways run at once, pinned to the gateway CPU, each with its own SQLite data dir and keys (a budgeted
key by default: what users run); only one is loaded at a time. Every round runs wrk against A, B, B, A (the
order flips each round), so drift in the machine's load hits both alike. CPU per request is the gateway's own
utime+stime over the wrk run divided by successful requests. Prints the medians, their ratio B/A and the load
average beside every round; writes bench/results/ab-<timestamp>.json.

    .venv/bin/python -m bench.ab --a TREE_A --b TREE_B --ttfb 300 --scenario messages_stream --rounds 5

`--ttfb N` measures time to first body byte instead (bench/sse_client.py, what the suite's TTFB table
reports): N sequential requests on one keep-alive connection to the upstream itself (U), then A B B A
(B A A B next round); the p50 of each, their medians per side, and "added" = side minus U, all in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from bench.fake_upstream import FakeUpstream
from bench.gateways import Orgate
from bench.suite import GATEWAY_CPU, RESULTS, Scenario, run_wrk, scenarios, scratch_upstream, ttfb

REPO = Path(__file__).resolve().parent.parent


def gateway(tmp: Path, name: str, port: int, up: FakeUpstream, tree: Path, env: list[str], ledger: bool) -> Orgate:
    gw = Orgate(tmp / name, port, up, ledger=ledger, variant=name, cpu=GATEWAY_CPU)
    gw.name = name
    gw.env["PYTHONPATH"] = str(tree)  # ahead of the editable install: this tree's orgate is the one imported
    for kv in env:
        k, _, v = kv.partition("=")
        gw.env[k] = v
    return gw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ab")
    ap.add_argument("--a", default=str(REPO), help="source tree A (default: this repo)")
    ap.add_argument("--b", default=str(REPO), help="source tree B (default: this repo)")
    ap.add_argument("--a-env", nargs="*", default=[], help="NAME=VALUE for A")
    ap.add_argument("--b-env", nargs="*", default=[], help="NAME=VALUE for B")
    ap.add_argument("--scenario", nargs="+", default=["messages"])
    ap.add_argument("--conns", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3, help="each round is A B B A (or B A A B)")
    ap.add_argument("--key", default="budget", choices=["budget", "nobudget"])
    ap.add_argument("--no-ledger", action="store_true")
    ap.add_argument("--base-port", type=int, default=18700)
    ap.add_argument("--label", default="")
    ap.add_argument("--ttfb", type=int, default=0, metavar="N",
                    help="time to first body byte of N sequential requests per side and round, not wrk")
    ap.add_argument("--client-cpu", type=int, default=None,
                    help="with --ttfb: pin the client to this CPU (0: the upstream's, as wrk); default unpinned")
    a = ap.parse_args(argv)
    ts, tmp, up = scratch_upstream("ab", a.base_port)
    gws = {"A": gateway(tmp, "A", a.base_port + 1, up, Path(a.a), a.a_env, not a.no_ledger),
           "B": gateway(tmp, "B", a.base_port + 2, up, Path(a.b), a.b_env, not a.no_ledger)}
    picked = [s for s in scenarios() if s.name in a.scenario]
    out: dict = {"started": ts, "args": vars(a), "loadavg_start": os.getloadavg(), "rows": []}
    try:
        for gw in gws.values():
            gw.start()
        for sc in picked:  # warm-up: pools, caches, the key's leases
            for gw in gws.values():
                run_wrk(gw.url(sc.path), sc.body, {**sc.extra_headers, **gw.headers(a.key)}, 16, 1, tmp / "wrk", gw)
        if a.ttfb:
            ttfb_rounds(a, picked, gws, up, out)
        for sc in picked if not a.ttfb else []:
            for c in a.conns:
                for i in range(a.rounds):
                    order = ["A", "B", "B", "A"] if i % 2 == 0 else ["B", "A", "A", "B"]
                    for name in order:
                        gw = gws[name]
                        load = os.getloadavg()[0]
                        r = run_wrk(gw.url(sc.path), sc.body, {**sc.extra_headers, **gw.headers(a.key)}, c,
                                    a.seconds, tmp / "wrk", gw)
                        row = {"scenario": sc.name, "conns": c, "round": i, "who": name, "load1": round(load, 2),
                               "cpu_ms_per_req": r.get("cpu_ms_per_req"), "rps": r.get("rps"), "ok": r.get("ok"),
                               "errors": r.get("error_count"), "p50_ms": r.get("latency_ms", {}).get("p50"),
                               "peak_rss_mb": r.get("peak_rss_mb")}
                        out["rows"].append(row)
                        print(f"{sc.name:16} c={c:<3} r{i} {name}  cpu {row['cpu_ms_per_req']} ms/req  "
                              f"rps {row['rps']}  p50 {row['p50_ms']} ms  err {row['errors']}  load {load:.2f}",
                              file=sys.stderr, flush=True)
    finally:
        for gw in gws.values():
            gw.stop()
        up.stop()
    out["loadavg_end"] = os.getloadavg()
    summary = []
    if a.ttfb:
        summary = ttfb_summary(picked, out)
    for sc in picked if not a.ttfb else []:
        for c in a.conns:
            med = {}
            for name in ("A", "B"):
                rows = [r for r in out["rows"] if r["scenario"] == sc.name and r["conns"] == c and r["who"] == name
                        and r["cpu_ms_per_req"] is not None]
                med[name] = {k: statistics.median(r[k] for r in rows) for k in ("cpu_ms_per_req", "rps", "p50_ms")}
            ratio = med["B"]["cpu_ms_per_req"] / med["A"]["cpu_ms_per_req"] if med["A"]["cpu_ms_per_req"] else None
            summary.append({"scenario": sc.name, "conns": c, "A": med["A"], "B": med["B"],
                            "cpu_ratio_b_over_a": round(ratio, 3) if ratio else None})
    out["summary"] = summary
    path = RESULTS / f"ab-{ts}{'-' + a.label if a.label else ''}.json"
    path.write_text(json.dumps(out, indent=1))
    for s in summary if not a.ttfb else []:
        print(f"{s['scenario']:16} c={s['conns']:<3} A cpu {s['A']['cpu_ms_per_req']:.4f} ms/req p50 {s['A']['p50_ms']} | "
              f"B cpu {s['B']['cpu_ms_per_req']:.4f} ms/req p50 {s['B']['p50_ms']} | B/A {s['cpu_ratio_b_over_a']}")
    print(f"load {out['loadavg_start']} -> {out['loadavg_end']}; wrote {path}")
    return 0


def ttfb_rounds(a: argparse.Namespace, picked: list[Scenario], gws: dict[str, Orgate], up: FakeUpstream,
                out: dict) -> None:
    """U A B B A (U B A A B next round): the upstream first in each round, so "added" uses this round's."""
    for sc in picked:
        for i in range(a.rounds):
            for name in ["U", *(["A", "B", "B", "A"] if i % 2 == 0 else ["B", "A", "A", "B"])]:
                load = os.getloadavg()[0]
                if name == "U":
                    t = ttfb(up.port, sc.upstream_path, sc.upstream_body, {**sc.extra_headers, "x-api-key": "x"},
                             a.ttfb, a.client_cpu)
                else:
                    gw = gws[name]
                    t = ttfb(gw.port, sc.path, sc.body, {**sc.extra_headers, **gw.headers(a.key)}, a.ttfb, a.client_cpu)
                row = {"scenario": sc.name, "round": i, "who": name, "load1": round(load, 2), "ok": t["ok"],
                       "ttfb_p50_ms": t["ttfb_ms"]["p50"], "ttfb_p90_ms": t["ttfb_ms"]["p90"],
                       "last_p50_ms": t["last_byte_ms"]["p50"], "events": t["events_p50"]}
                out["rows"].append(row)
                print(f"{sc.name:16} r{i} {name}  ttfb p50 {row['ttfb_p50_ms']} ms  p90 {row['ttfb_p90_ms']}  "
                      f"last {row['last_p50_ms']}  ok {t['ok']}/{t['n']}  events {row['events']}  load {load:.2f}",
                      file=sys.stderr, flush=True)


def ttfb_summary(picked: list[Scenario], out: dict) -> list[dict]:
    summary = []
    for sc in picked:
        med = {}
        for name in ("U", "A", "B"):
            rows = [r for r in out["rows"] if r["scenario"] == sc.name and r["who"] == name and r["ok"]]
            med[name] = statistics.median(r["ttfb_p50_ms"] for r in rows) if rows else float("nan")
        # Paired by round (each round's two A and two B runs ran back to back): B - A per round, and how often
        # B was faster, which says more than the medians when the machine's load drifts.
        diffs = []
        for i in sorted({r["round"] for r in out["rows"] if r["scenario"] == sc.name}):
            side = {n: [r["ttfb_p50_ms"] for r in out["rows"] if r["scenario"] == sc.name and r["round"] == i
                        and r["who"] == n and r["ok"]] for n in ("A", "B")}
            if side["A"] and side["B"]:
                diffs.append(statistics.mean(side["B"]) - statistics.mean(side["A"]))
        s = {"scenario": sc.name, "ttfb_p50_ms": med, "added_a_ms": round(med["A"] - med["U"], 3),
             "added_b_ms": round(med["B"] - med["U"], 3),
             "b_minus_a_by_round_ms": [round(d, 3) for d in diffs],
             "b_minus_a_median_ms": round(statistics.median(diffs), 3) if diffs else None,
             "rounds_b_faster": sum(d < 0 for d in diffs)}
        summary.append(s)
        print(f"{sc.name:16} ttfb p50 (median of rounds) U {med['U']:.3f}  A {med['A']:.3f}  B {med['B']:.3f} ms;"
              f"  added A {s['added_a_ms']:.3f}  B {s['added_b_ms']:.3f} ms;  B-A by round median "
              f"{s['b_minus_a_median_ms']} ms, B faster in {s['rounds_b_faster']}/{len(diffs)} rounds")
    return summary


if __name__ == "__main__":
    sys.exit(main())
