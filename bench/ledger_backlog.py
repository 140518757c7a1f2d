"""Does the ledger writer keep up? A budgeted (or unbudgeted) key under wrk c=64 for 30 s, printing every 3 s
the rows still waiting after the last flush (orgate_ledger_queue_rows) and orgate's RSS.

    python -m bench.ledger_backlog [budget|nobudget]

A writer that keeps up shows a few hundred rows at most and drains to 0 when the load stops; one that does not
shows the backlog (and RSS) growing for as long as the load lasts.
"""

import json
import sys
import threading
import time

import httpx

from bench.bodies import small_messages
from bench.gateways import Orgate
from bench.suite import run_wrk, scratch_upstream

ts, tmp, up = scratch_upstream("queue", 18941)
gw = Orgate(tmp, 18942, up)
gw.start()
pid = gw.proc.pid
def rss(): return int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]) // 1024
def queue():
    for line in httpx.get(gw.url("/metrics")).text.splitlines():
        if line.startswith("orgate_ledger_queue_rows"):
            return float(line.split()[-1])
stop = False
def watch():
    while not stop:
        print(f"t={time.time()-t0:5.1f} queue={queue()} rss={rss()}MB", flush=True)
        time.sleep(3)
body = json.dumps(small_messages()).encode()
key = sys.argv[1] if len(sys.argv) > 1 else "budget"
t0 = time.time()
th = threading.Thread(target=watch, daemon=True)
th.start()
r = run_wrk(gw.url("/v1/messages"), body, gw.headers(key), 64, 30, tmp, gw)
print("wrk", key, r["requests"], r.get("error_count"), r.get("rps"), flush=True)
time.sleep(10)
stop = True
gw.stop()
up.stop()
