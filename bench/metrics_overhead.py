"""Metrics on vs off, same build, same run: CPU per request of the non-streaming `messages` case.

Two orgate processes run side by side on the gateway CPU, one with `metrics.enabled: true` and one with
`false` (tracing off in both: no OTEL_* variables reach them). wrk loads one at a time, alternating in an
A-B-B-A order round after round so the shared machine's drift hits both alike; each round's ratio compares
neighbours in time. Prints every round and writes bench/results/metrics-overhead-<timestamp>.json.

    .venv/bin/python -m bench.metrics_overhead --rounds 6 --seconds 8 --concurrency 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from bench.fake_upstream import FakeUpstream, validate_bodies
from bench.gateways import Orgate
from bench.suite import GATEWAY_CPU, RESULTS, UPSTREAM_CPU, run_wrk, scenarios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--base-port", type=int, default=18600)
    args = ap.parse_args(argv)
    for k in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[k]
    ts = time.strftime("%Y%m%dT%H%M%S")
    tmp = (RESULTS / "tmp" / f"metrics-{ts}").resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    validate_bodies()
    sc = next(s for s in scenarios() if s.name == "messages")
    upstream = FakeUpstream(tmp, args.base_port, UPSTREAM_CPU)
    upstream.start()
    gws = {}
    for i, (name, on) in enumerate((("metrics_on", True), ("metrics_off", False))):
        gw = Orgate(tmp, args.base_port + 1 + i, upstream, cpu=GATEWAY_CPU, variant=name)
        gw.env["ORGATE_METRICS__ENABLED"] = "true" if on else "false"
        gws[name] = gw
    rounds: list[dict] = []
    try:
        for gw in gws.values():
            gw.start()
            run_wrk(gw.url(sc.path), sc.body, {**sc.extra_headers, **gw.headers()}, 16, 2, tmp / "wrk", gw)  # warm-up
        for r in range(args.rounds):
            order = ["metrics_on", "metrics_off"] if r % 2 == 0 else ["metrics_off", "metrics_on"]
            row: dict = {"round": r + 1, "order": order, "loadavg": os.getloadavg()[0]}
            for name in order:
                gw = gws[name]
                out = run_wrk(gw.url(sc.path), sc.body, {**sc.extra_headers, **gw.headers()}, args.concurrency,
                              args.seconds, tmp / "wrk", gw)
                row[name] = {"cpu_ms_per_req": out.get("cpu_ms_per_req"), "rps": out.get("rps"),
                             "errors": out.get("error_count")}
            on, off = row["metrics_on"]["cpu_ms_per_req"], row["metrics_off"]["cpu_ms_per_req"]
            row["ratio_on_off"] = round(on / off, 4) if on and off else None
            rounds.append(row)
            print(f"round {r + 1}: on {on} ms/req ({row['metrics_on']['rps']} req/s), off {off} ms/req "
                  f"({row['metrics_off']['rps']} req/s), on/off {row['ratio_on_off']}, load {row['loadavg']:.1f}",
                  file=sys.stderr, flush=True)
        scrape = os.popen(f"curl -s {gws['metrics_on'].url('/metrics')} | grep -c '^orgate_'").read().strip()
    finally:
        for gw in gws.values():
            gw.stop()
        upstream.stop()
    ratios = [r["ratio_on_off"] for r in rounds if r["ratio_on_off"]]
    summary = {
        "median_on_ms": statistics.median(r["metrics_on"]["cpu_ms_per_req"] for r in rounds),
        "median_off_ms": statistics.median(r["metrics_off"]["cpu_ms_per_req"] for r in rounds),
        "median_ratio": statistics.median(ratios), "min_ratio": min(ratios), "max_ratio": max(ratios),
        "metrics_on_series_lines": scrape,
    }
    result = {"started": ts, "scenario": sc.name, "concurrency": args.concurrency, "seconds": args.seconds,
              "rounds": rounds, "summary": summary}
    out_path = RESULTS / f"metrics-overhead-{ts}.json"
    out_path.write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"written {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
