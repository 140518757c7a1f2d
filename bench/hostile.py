"""Soak: a normal client's latency and orgate's memory while hostile clients hold the door.

    python -m bench.hostile [--idle 1000] [--requests 600] [--header-mb 100] [--database-url URL]

Starts the nginx fake upstream and `orgate serve` (each pinned to its own CPU, as bench.suite does), then:
1. baseline: `--requests` sequential small /v1/messages calls on one keep-alive connection: p50/p99, RSS;
2. attack, in a separate process so the measuring client's timings are its own: one client uploading a
   `--header-mb` header over and over (it reconnects whenever orgate cuts it off) and `--idle` idle
   connections kept open (each reopened as soon as orgate closes it);
3. the same calls again during the attack: p50/p99, and orgate's RSS sampled every 100 ms.
Prints one JSON object; exits 1 when the attack p99 is over 50 ms or RSS grew by 20 MB or more.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.bodies import small_messages
from bench.fake_upstream import FakeUpstream
from bench.gateways import Orgate
from bench.procstat import memory_mb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _big_header(port: int, megabytes: int, stop: threading.Event, counts: dict) -> None:
    chunk = b"a" * 65536
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: ")
                for _ in range(megabytes * 16):
                    s.sendall(chunk)
                    counts["header_bytes"] += len(chunk)
        except OSError:
            counts["cut_off"] += 1  # orgate refused the header (431) and closed the connection
        stop.wait(0.1)  # then it tries again: one client, one upload at a time


def _idle(port: int, n: int, stop: threading.Event, counts: dict) -> None:
    """Keep `n` connections open that never send a byte; reopen each one orgate answers (408) and closes."""
    poller, socks = select.poll(), {}
    while not stop.is_set():
        while len(socks) < n and not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                counts["connect_failed"] += 1
                break
            socks[s.fileno()] = s
            poller.register(s, select.POLLIN)
        counts["idle_open"] = max(counts["idle_open"], len(socks))
        for fd, _ in poller.poll(200):
            poller.unregister(fd)
            socks.pop(fd).close()
            counts["idle_closed"] += 1
    for s in socks.values():
        s.close()


def attacker(port: int, idle: int, megabytes: int, stop_evt: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    os.sched_setaffinity(0, {0})  # beside nginx, off orgate's CPU: the attacker's own CPU is not orgate's cost
    stop = threading.Event()
    counts = {"header_bytes": 0, "cut_off": 0, "idle_closed": 0, "connect_failed": 0, "idle_open": 0}
    threads = [threading.Thread(target=_big_header, args=(port, megabytes, stop, counts), daemon=True),
               threading.Thread(target=_idle, args=(port, idle, stop, counts), daemon=True)]
    for t in threads:
        t.start()
    stop_evt.wait()
    stop.set()
    for t in threads:
        t.join(10)
    out.put(counts)


def measure(url: str, headers: dict, n: int) -> dict:
    body = json.dumps(small_messages()).encode()
    lat = []
    with httpx.Client(timeout=30, headers={**headers, "content-type": "application/json"}) as c:
        for _ in range(n):
            t = time.perf_counter()
            r = c.post(url, content=body)
            lat.append((time.perf_counter() - t) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"normal request failed: {r.status_code} {r.text[:200]}")
    slow = [(i, round(x)) for i, x in enumerate(lat) if x > 500]  # (index, ms): stalls worth a look
    lat.sort()
    return {"stalls_over_500ms": slow, "n": n, "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(lat[int(n * 0.99) - 1], 2),
            "max_ms": round(lat[-1], 2)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--header-mb", type=int, default=100)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="orgate-hostile-"))
    work.chmod(0o755)  # nginx's workers run as another user and must read the canned answers
    upstream = FakeUpstream(work, free_port(), cpu=0)
    upstream.start()
    gw = Orgate(work, free_port(), upstream, database_url=args.database_url, cpu=1)
    gw.start()
    url = gw.url("/v1/messages")
    try:
        measure(url, gw.headers(), 200)  # warm up: imports, caches, pools
        base_rss = memory_mb(gw.pid)["rss_mb"]
        cpu0 = gw.cpu_seconds()
        baseline = measure(url, gw.headers(), args.requests)
        cpu1 = gw.cpu_seconds()
        stop_evt, q = mp.Event(), mp.Queue()
        proc = mp.Process(target=attacker, args=(gw.port, args.idle, args.header_mb, stop_evt, q))
        proc.start()
        peak = [base_rss]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak.append(memory_mb(gw.pid)["rss_mb"])
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(3)  # let the idle connections pile up and the header upload get going
        cpu2, t2 = gw.cpu_seconds(), time.monotonic()
        attacked = measure(url, gw.headers(), args.requests)
        cpu3, t3 = gw.cpu_seconds(), time.monotonic()
        stop_evt.set()
        counts = q.get(timeout=60)
        proc.join(10)
        sampling.set()
        sampler.join()
    finally:
        gw.stop()
        upstream.stop()
        print(f"orgate log: {gw.log_path}", file=sys.stderr)
    growth = round(max(peak) - base_rss, 1)
    # orgate's own CPU (rusage, not disturbed by other load on the machine): per normal request, and what the
    # attack costs it beyond the normal requests, as a share of one core over the attacked stretch.
    per_request = (cpu1 - cpu0) / args.requests
    baseline["orgate_cpu_ms_per_request"] = round(per_request * 1000, 3)
    attacked["orgate_cpu_s"] = round(cpu3 - cpu2, 2)
    attacked["wall_s"] = round(t3 - t2, 1)
    attacked["attack_cpu_share_of_a_core"] = round(((cpu3 - cpu2) - per_request * args.requests) / (t3 - t2), 3)
    report = {"baseline": baseline, "under_attack": attacked, "rss_base_mb": base_rss, "rss_peak_mb": max(peak),
              "rss_growth_mb": growth, "attack": counts, "idle_target": args.idle, "header_mb": args.header_mb}
    print(json.dumps(report, indent=1))
    return 0 if attacked["p99_ms"] < 50 and growth < 20 else 1


if __name__ == "__main__":
    sys.exit(main())
