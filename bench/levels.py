"""Budget levels: CPU per request of a budgeted key under a budgeted user and team, against a budgeted key
without either, in the same run, interleaved and repeated (the machine is shared and noisy).

    .venv/bin/python -m bench.levels [--rounds 8] [--seconds 4] [--conns 64] [--postgres]

One orgate (ledger on, SQLite unless --postgres), the nginx fake upstream, wrk on the non-streaming
`messages` scenario. Each round runs the two keys back to back, alternating which goes first; the report is
the median CPU ms per request of each key over the rounds and their ratio. Writes
bench/results/levels-<timestamp>.json.
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
from bench.suite import GATEWAY_CPU, PG_URL, RESULTS, UPSTREAM_CPU, run_wrk, scenarios

NEVER = "10000000"  # USD: a budget no run exhausts, so every request takes the lease path and none is refused


def team_key(gw: Orgate, tag: str) -> str:
    """A budgeted key of a budgeted user in a budgeted team: all three levels held on every request."""
    gw._cli("teams", "create", "--name", f"bench-{tag}-team", "--budget", NEVER)
    gw._cli("users", "create", "--name", f"bench-{tag}-user", "--budget", NEVER, "--team", f"bench-{tag}-team")
    return gw._create_key("--name", f"bench-{tag}-teamkey", "--budget", NEVER, "--user", f"bench-{tag}-user")


def micro(n: int = 100_000, repeats: int = 7) -> dict:
    """The admission and settlement code alone (in memory, far from every limit: leases already held), for a
    key only and for key + user + team, interleaved; process CPU time, so other processes' load counts less."""
    import asyncio

    from orgate.governance.budget import CostBound
    from orgate.governance.leases import BudgetLeases, Cap

    class Held:  # a store that grants every growth: the measured loop never needs one after the first
        async def grow_lease(self, ref, lease_id, amount, period_start_ms):  # type: ignore[no-untyped-def]
            return True

        async def remaining(self, ref, period_start_ms):  # type: ignore[no-untyped-def]
            return None, 0, 0

    bound = CostBound(300, 15_000_000, 1024)
    levels = {"key": [("key", 1)], "key+user+team": [("key", 1), ("user", 1), ("team", 1)]}

    async def loop(refs: list) -> float:  # type: ignore[type-arg]
        leases = BudgetLeases(Held(), "bench", 2.0)
        caps = [Cap(r, 10**15, 0) for r in refs]
        t0 = time.process_time()
        for _ in range(n):
            ticket, _mt = await leases.admit(caps, bound)  # type: ignore[misc]
            leases.settle(ticket, refs, 500)
        return (time.process_time() - t0) / n * 1e6

    runs: dict[str, list[float]] = {k: [] for k in levels}
    for i in range(repeats):
        for name in (list(levels) if i % 2 == 0 else list(levels)[::-1]):
            runs[name].append(round(asyncio.run(loop(levels[name])), 3))
    return {"us_per_request": runs, "median_us": {k: statistics.median(v) for k, v in runs.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.levels")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--base-port", type=int, default=18400)
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--micro", action="store_true", help="only the in-process admission/settlement timing")
    args = ap.parse_args()
    if args.micro:
        print(json.dumps(micro(), indent=2))
        return 0
    ts = time.strftime("%Y%m%dT%H%M%S")
    tmp = (RESULTS / "tmp" / f"levels-{ts}").resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    validate_bodies()
    sc = next(s for s in scenarios() if s.name == "messages")
    upstream = FakeUpstream(tmp, args.base_port, UPSTREAM_CPU)
    upstream.start()
    gw = Orgate(tmp, args.base_port + 1, upstream, database_url=PG_URL if args.postgres else None,
                variant="levels", cpu=GATEWAY_CPU)
    out: dict = {"started": ts, "loadavg_start": os.getloadavg(), "rounds": [], "config": vars(args)}
    try:
        gw.create_keys()
        gw.keys["team"] = team_key(gw, time.strftime("%Y%m%d%H%M%S"))
        gw.start()
        for key in ("budget", "team"):  # warm both paths (leases taken, caches filled)
            run_wrk(gw.url(sc.path), sc.body, gw.headers(key), 16, 1, tmp / "wrk", gw)
        for i in range(args.rounds):
            order = ("budget", "team") if i % 2 == 0 else ("team", "budget")
            row = {}
            for key in order:
                r = run_wrk(gw.url(sc.path), sc.body, gw.headers(key), args.conns, args.seconds, tmp / "wrk", gw)
                row[key] = {"cpu_ms_per_req": r.get("cpu_ms_per_req"), "rps": r.get("rps"), "ok": r.get("ok"),
                            "errors": r.get("error_count")}
            out["rounds"].append(row)
            print(f"round {i + 1}: budget key {row['budget']['cpu_ms_per_req']} ms/req, "
                  f"key+user+team {row['team']['cpu_ms_per_req']} ms/req", file=sys.stderr, flush=True)
    finally:
        gw.stop()
        upstream.stop()
    med = {k: statistics.median(r[k]["cpu_ms_per_req"] for r in out["rounds"]) for k in ("budget", "team")}
    ratios = [r["team"]["cpu_ms_per_req"] / r["budget"]["cpu_ms_per_req"] for r in out["rounds"]]
    out["median_cpu_ms_per_req"] = med
    out["ratio_of_medians"] = round(med["team"] / med["budget"], 4)
    out["median_of_round_ratios"] = round(statistics.median(ratios), 4)
    out["loadavg_end"] = os.getloadavg()
    path = RESULTS / f"levels-{ts}.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: out[k] for k in ("median_cpu_ms_per_req", "ratio_of_medians", "median_of_round_ratios",
                                          "loadavg_start", "loadavg_end")}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
