"""The harness's floor for "added time to first byte": nginx as a reverse proxy in the gateway's place.

A gateway on CPU 1 between a client and the fake upstream on CPU 0 adds, besides its own work, the hops
between them: each leg that crosses vCPUs wakes a halted vCPU. The fake upstream's own TTFB is measured with
the same client, which the scheduler tends to run on the upstream's (busier) CPU, where a round trip crosses
no vCPU at all. This tool measures what a proxy doing no Python work adds in the same placement: nginx, one
worker pinned to the gateway's CPU, keep-alive to the upstream, no buffering (each event relayed as read),
against the same canned stream and JSON answers, with the same SSE client, unpinned as in the suite.

    python -m bench.proxy_floor [-n 500] [--rounds 3]

Prints the TTFB p50 of the upstream directly and through the proxy, per round, and the added median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from bench.fake_upstream import NGINX, wait_http
from bench.suite import GATEWAY_CPU, RESULTS, scratch_upstream, ttfb

PROXY_CONF = """
worker_processes 1;
daemon off;
pid {dir}/proxy.pid;
error_log {dir}/proxy-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  tcp_nodelay on;
  keepalive_requests 100000000;
  client_body_temp_path {dir}/pbody;
  proxy_temp_path {dir}/pproxy;
  upstream up {{ server 127.0.0.1:{up}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }}
  }}
}}
"""


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.proxy_floor")
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=18980)
    a = ap.parse_args()
    ts, tmp, up = scratch_upstream("proxy-floor", a.base_port)
    d = up.dir
    port = a.base_port + 1
    conf = d / "proxy.conf"
    conf.write_text(PROXY_CONF.format(dir=d, up=a.base_port, port=port))
    proxy = subprocess.Popen(["taskset", "-c", str(GATEWAY_CPU), NGINX, "-c", str(conf), "-p", str(d), "-e",
                              str(d / "proxy-error.log")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    out: dict = {"started": ts, "n": a.n, "rounds": []}
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/messages", post=True)
        body = json.dumps({"model": "m", "max_tokens": 16, "stream": True,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        for r in range(a.rounds):
            row = {}
            for name, p, path in (("upstream", a.base_port, "/sse/v1/messages"), ("proxy", port, "/sse/v1/messages"),
                                  ("upstream_json", a.base_port, "/v1/messages"), ("proxy_json", port, "/v1/messages")):
                row[name] = ttfb(p, path, body, {}, a.n)["ttfb_ms"]["p50"]
            row["added_stream"] = round(row["proxy"] - row["upstream"], 3)
            row["added_json"] = round(row["proxy_json"] - row["upstream_json"], 3)
            out["rounds"].append(row)
            print(f"round {r}: {row}", flush=True)
        out["added_stream_median"] = statistics.median(x["added_stream"] for x in out["rounds"])
        out["added_json_median"] = statistics.median(x["added_json"] for x in out["rounds"])
        print(f"nginx as the proxy adds (TTFB p50, median of rounds): stream {out['added_stream_median']} ms, "
              f"json {out['added_json_median']} ms")
    finally:
        proxy.terminate()
        proxy.wait(10)
        up.stop()
    path = RESULTS / f"proxy-floor-{ts}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
