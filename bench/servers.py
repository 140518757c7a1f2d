"""ASGI server choice: the same orgate app under `orgate serve` (uvicorn + uvloop + httptools) and granian.

    python -m bench.servers [--duration 8]

granian is not a dependency of orgate: install it outside the repo's environment, e.g.
`.venv/bin/pip install --target bench/results/tmp/granian-pkgs granian` (the default --granian-path).
Writes bench/results/servers-<timestamp>.json and prints a table; same pinning and fake upstream as the suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.fake_upstream import FakeUpstream, wait_http
from bench.gateways import Orgate
from bench.suite import GATEWAY_CPU, RESULTS, UPSTREAM_CPU, run_wrk, scenarios

REPO = Path(__file__).resolve().parent.parent


class OrgateGranian(Orgate):
    def __init__(self, *a, granian_path: Path, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self.name = "orgate-granian"
        self.granian_path = granian_path

    def start(self) -> None:
        if not self.keys:
            self.create_keys()
        env = dict(self.env, PYTHONPATH=f"{self.granian_path}:{REPO}")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(self.cpu), sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop",
             "--http", "1", "--workers", "1", "--no-ws", "--log-level", "warning", "--host", "127.0.0.1",
             "--port", str(self.port), "bench.asgi_entry:app"],
            env=env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(self.url("/health"), timeout=60, proc=self.proc)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.log_tail()}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.servers")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--granian-path", default=str(RESULTS / "tmp" / "granian-pkgs"))
    ap.add_argument("--base-port", type=int, default=18950)
    a = ap.parse_args(argv)
    ts = time.strftime("%Y%m%dT%H%M%S")
    tmp = (RESULTS / "tmp" / f"servers-{ts}").resolve()
    up = FakeUpstream(tmp, a.base_port, UPSTREAM_CPU)
    up.start()
    rows = []
    picked = [s for s in scenarios() if s.name in ("messages", "messages_stream")]
    try:
        for gw in (Orgate(tmp, a.base_port + 1, up, cpu=GATEWAY_CPU),
                   OrgateGranian(tmp, a.base_port + 1, up, cpu=GATEWAY_CPU, granian_path=Path(a.granian_path))):
            try:
                gw.start()
            except Exception as e:
                rows.append({"server": gw.name, "error": str(e)[-2000:]})
                gw.stop()
                continue
            try:
                for sc in picked:
                    h = {**sc.extra_headers, **gw.headers()}
                    run_wrk(gw.url(sc.path), sc.body, h, 16, 2, tmp / "wrk", gw)
                    for c in (1, 64):
                        r = run_wrk(gw.url(sc.path), sc.body, h, c, a.duration, tmp / "wrk", gw)
                        rows.append({"server": "uvicorn" if gw.name == "orgate" else "granian", "scenario": sc.name,
                                     "concurrency": c, **r})
                        print(f"{rows[-1]['server']:8} {sc.name:16} c={c:<3} {r['rps']:>8} req/s p50 "
                              f"{r['latency_ms']['p50']} p99 {r['latency_ms']['p99']} ms cpu {r.get('cpu_ms_per_req')} "
                              f"ms/req err {r['error_count']}", flush=True)
            finally:
                gw.stop()
    finally:
        up.stop()
    out = RESULTS / f"servers-{ts}.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
