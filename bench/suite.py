"""The benchmark suite: fake upstream, gateways, wrk load, SSE timing, CPU/RSS, ledger matrix, soak, table, JSON.

Run `python -m bench --help` (or bench/run.sh) for options; bench/README.md explains every number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import bodies, sse_client
from bench.fake_upstream import MODEL, FakeUpstream, validate_bodies
from bench.gateways import STREAM_MODEL, Gateway, LiteLLM, Orgate
from bench.report import machine, summarize_profile, table, targets, versions

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
UPSTREAM_CPU, GATEWAY_CPU = 0, 1
# What users run: a key with a budget (every request takes the lease path) and the ledger on. The key without
# a budget and the ledger off are extra rows.
DEFAULT_KEY = "budget"


@dataclass
class Scenario:
    name: str
    path: str  # on the gateway
    upstream_path: str  # on the fake upstream: what the gateway itself calls
    body: bytes  # sent to the gateway
    upstream_body: bytes  # sent to the upstream directly
    extra_headers: dict[str, str]
    stream: bool


def scenarios() -> list[Scenario]:
    small = bodies.dump(bodies.small_messages())
    small_stream = bodies.dump(bodies.small_messages(STREAM_MODEL, stream=True))
    cc, cc_headers = bodies.claude_code(STREAM_MODEL)
    cc_up = dict(cc, model=MODEL)
    chat = bodies.dump(bodies.chat_stream(STREAM_MODEL))
    return [
        Scenario("messages", "/v1/messages", "/v1/messages", small, bodies.dump(bodies.small_messages()), {}, False),
        Scenario("messages_stream", "/v1/messages", "/sse/v1/messages", small_stream,
                 bodies.dump(bodies.small_messages(MODEL, stream=True)), {}, True),
        Scenario("chat_stream", "/v1/chat/completions", "/sse/v1/messages", chat,
                 bodies.dump(bodies.small_messages(MODEL, stream=True)), {}, True),
        Scenario("claude_code_150k", "/v1/messages?beta=true", "/sse/v1/messages", bodies.dump(cc),
                 bodies.dump(cc_up), cc_headers, True),
    ]


# -- load generation --------------------------------------------------------------------------------------

def run_wrk(url: str, body: bytes, headers: dict[str, str], conns: int, seconds: float, tmp: Path,
            gateway: Gateway | None = None) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    bpath, hpath, opath = tmp / "body.bin", tmp / "headers.txt", tmp / "wrk-out.json"
    bpath.write_bytes(body)
    hpath.write_text("".join(f"{k}: {v}\n" for k, v in headers.items()))
    opath.unlink(missing_ok=True)
    env = dict(os.environ, BENCH_BODY=str(bpath), BENCH_HEADERS=str(hpath), BENCH_OUT=str(opath))
    cmd = ["taskset", "-c", str(UPSTREAM_CPU), WRK, "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s",
           "--timeout", "10s", "-s", str(BENCH / "post.lua"), url]
    cpu0 = gateway.cpu_seconds() if gateway else 0.0
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    cpu1 = gateway.cpu_seconds() if gateway else 0.0
    if not opath.exists():
        return {"requests": 0, "ok": 0, "error": (r.stderr or r.stdout)[-500:], "rps": 0.0}
    out = json.loads(opath.read_text())
    errs = out["errors"]
    n_err = sum(errs.values())
    dur = out["duration_us"] / 1e6
    out["ok"] = max(0, out["requests"] - errs["status"])
    out["error_count"] = n_err
    out["rps"] = round(out["ok"] / dur, 1) if dur else 0.0
    out["latency_ms"] = {k: round(v / 1000, 3) for k, v in out.pop("latency_us").items()}
    if gateway:
        used = cpu1 - cpu0
        out["gateway_cpu_s"] = round(used, 3)
        out["cpu_ms_per_req"] = round(used * 1000 / out["ok"], 4) if out["ok"] else None
        out["cpu_s_per_1000"] = out["cpu_ms_per_req"]  # the same number: ms/request == s/1000 requests
        out.update(gateway.memory())
    return out


def ttfb(port: int, path: str, body: bytes, headers: dict[str, str], n: int, cpu: int | None = None) -> dict:
    """The SSE client's timings of n sequential requests; `cpu` pins this (the client's) process meanwhile,
    e.g. to the upstream's CPU as wrk is, so that the client never runs on the gateway's CPU."""
    if cpu is None:
        return sse_client.summarize(asyncio.run(sse_client.run("127.0.0.1", port, path, body, headers, n)))
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return sse_client.summarize(asyncio.run(sse_client.run("127.0.0.1", port, path, body, headers, n)))
    finally:
        os.sched_setaffinity(0, old)


def scratch_upstream(kind: str, port: int) -> tuple[str, Path, FakeUpstream]:
    """(timestamp, scratch dir, started fake upstream) for a side tool's run (bench.ab, bench.instr)."""
    ts = time.strftime("%Y%m%dT%H%M%S")
    tmp = (RESULTS / "tmp" / f"{kind}-{ts}").resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    validate_bodies()
    up = FakeUpstream(tmp, port, UPSTREAM_CPU)
    up.start()
    return ts, tmp, up


# -- the phases -------------------------------------------------------------------------------------------

class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.ts = time.strftime("%Y%m%dT%H%M%S")
        self.tmp = (RESULTS / "tmp" / f"run-{self.ts}").resolve()
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.seconds = args.duration or (1.0 if self.quick else 8.0)
        self.concurrency = args.concurrency or ([1, 16] if self.quick else [1, 16, 64, 256])
        self.upstream = FakeUpstream(self.tmp, args.base_port, UPSTREAM_CPU)
        self.scenarios = [s for s in scenarios() if not args.scenario or s.name in args.scenario]
        self.result: dict = {"started": self.ts, "mode": "quick" if self.quick else "full", "machine": machine(),
                             "versions": versions(), "config": {"duration_s": self.seconds,
                                                                "concurrency": self.concurrency},
                             "default_key": DEFAULT_KEY, "runs": [], "extra": [], "ttfb": [], "ledger": [],
                             "soak": {}, "notes": []}

    def log(self, msg: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def note(self, msg: str) -> None:
        self.log(msg)
        self.result["notes"].append(msg)

    def run(self) -> dict:
        # Other processes on the machine share both CPUs with the pinned parts; the load average says how much.
        self.result["machine"]["loadavg_start"] = os.getloadavg()
        self.result["canned_bodies"] = validate_bodies()
        self.upstream.start()
        try:
            self.matrix_upstream()
            org = Orgate(self.tmp, self.args.base_port + 1, self.upstream, cpu=GATEWAY_CPU)
            self.with_gateway(org, self.matrix_gateway)
            if self.args.litellm:
                ok, why = LiteLLM.available()
                if not ok:
                    self.note(f"LiteLLM not run: {why}")
                    self.result["litellm_error"] = why
                else:
                    self.with_gateway(LiteLLM(self.tmp, self.args.base_port + 2, self.upstream, GATEWAY_CPU),
                                      self.matrix_gateway)
            if not self.args.skip_ledger:
                self.ledger_matrix()
            if self.args.soak_requests:
                self.with_gateway(Orgate(self.tmp, self.args.base_port + 1, self.upstream, cpu=GATEWAY_CPU,
                                         variant="soak"), self.soak)
            if self.args.profile:
                self.with_gateway(Orgate(self.tmp, self.args.base_port + 1, self.upstream, cpu=GATEWAY_CPU,
                                         variant="profile"), self.profile)
        finally:
            self.upstream.stop()
        self.result["machine"]["loadavg_end"] = os.getloadavg()
        self.result["targets"] = targets(self.result)
        return self.result

    def with_gateway(self, gw: Gateway, fn) -> None:  # type: ignore[no-untyped-def]
        self.log(f"starting {gw.name} ({gw.variant})")
        t0 = time.monotonic()
        try:
            gw.start()
        except Exception as e:
            self.note(f"{gw.name} ({gw.variant}) could not start: {e}")
            self.result.setdefault(f"{gw.name}_error", str(e)[-3000:])
            gw.stop()
            return
        self.log(f"{gw.name} up in {time.monotonic() - t0:.1f}s, pid {gw.pid}, {gw.memory()}")
        try:
            fn(gw)
        finally:
            gw.stop()
            for p in gw.dir.glob("*.log"):  # access logs of a soak grow to hundreds of MB
                if p.stat().st_size > 5_000_000:
                    p.unlink()

    def record(self, target: str, variant: str, sc: Scenario, conns: int, r: dict, key: str = "nobudget") -> None:
        row = {"target": target, "variant": variant, "key": key, "scenario": sc.name, "concurrency": conns, **r}
        self.result[{"ledger": "ledger", "extra": "extra"}.get(variant, "runs")].append(row)
        lat = r.get("latency_ms", {})
        cpu = r.get("cpu_ms_per_req")
        self.log(f"{target:8} {sc.name:17} c={conns:<4} {r.get('rps', 0):>9.1f} req/s  p50 {lat.get('p50', 0):7.2f} "
                 f"p99 {lat.get('p99', 0):7.2f} ms  err {r.get('error_count', '?')}"
                 + (f"  cpu {cpu:.3f} ms/req  rss {r.get('rss_mb')} MB" if cpu is not None else ""))

    def matrix_upstream(self) -> None:
        for sc in self.scenarios:
            for c in self.concurrency:
                r = run_wrk(f"{self.upstream.base_json}{sc.upstream_path}", sc.upstream_body, {}, c, self.seconds,
                            self.tmp / "wrk")
                self.record("upstream", "direct", sc, c, r)
            t = ttfb(self.upstream.port, sc.upstream_path, sc.upstream_body, {}, self.ttfb_n)
            self.result["ttfb"].append({"target": "upstream", "scenario": sc.name, **t})

    @property
    def ttfb_n(self) -> int:
        return 20 if self.quick else 500

    def matrix_gateway(self, gw: Gateway) -> None:
        # Warm up every scenario with a few sequential requests first: some gateways import and build
        # per-route state lazily, and their first requests take seconds.
        for sc in self.scenarios:
            ttfb(gw.port, sc.path, sc.body, {**sc.extra_headers, **gw.headers()}, 1)
        for sc in self.scenarios:
            headers = {**sc.extra_headers, **gw.headers(DEFAULT_KEY)}
            if sc.path.startswith("/v1/chat"):
                probe = ttfb(gw.port, sc.path, sc.body, headers, 1)
                if probe["ok"] == 0:
                    self.note(f"{gw.name}: {sc.name} gave no successful response (is {sc.path} wired?); skipped")
                    self.result["runs"].append({"target": gw.name, "variant": gw.variant, "scenario": sc.name,
                                                "skipped": "no successful response to a probe"})
                    continue
            # A short warm-up so that connection pools and caches are filled before measuring.
            run_wrk(gw.url(sc.path), sc.body, headers, 16, 1, self.tmp / "wrk", gw)
            for c in self.concurrency:
                r = run_wrk(gw.url(sc.path), sc.body, headers, c, self.seconds, self.tmp / "wrk", gw)
                self.record(gw.name, gw.variant, sc, c, r, DEFAULT_KEY)  # the key these rows used
            t = ttfb(gw.port, sc.path, sc.body, headers, self.ttfb_n if gw.name == "orgate" else self.ttfb_n // 5)
            self.result["ttfb"].append({"target": gw.name, "scenario": sc.name, **t})
            self.log(f"{gw.name} {sc.name} ttfb p50 {t['ttfb_ms']['p50']} ms, last byte p50 "
                     f"{t['last_byte_ms']['p50']} ms, events {t['events_p50']}")
        if gw.name == "orgate":
            self.extra_rows(gw)

    def extra_rows(self, gw: Gateway) -> None:
        """The key without a budget, beside the default (budgeted) key: same gateway, same scenarios."""
        for sc in self.scenarios:
            if sc.name not in ("messages", "messages_stream"):
                continue
            headers = {**sc.extra_headers, **gw.headers("nobudget")}
            for c in [c for c in self.concurrency if c in (1, 64)] or self.concurrency[:1]:
                r = run_wrk(gw.url(sc.path), sc.body, headers, c, self.seconds, self.tmp / "wrk", gw)
                self.record(gw.name, "extra", sc, c, r, "nobudget")

    def ledger_matrix(self) -> None:
        """Ledger off vs on (SQLite, PostgreSQL), each with a budget key and a key without budget."""
        conns = [16] if self.quick else [1, 64]
        variants = [("ledger-off", False, None), ("sqlite", True, None)]
        if not self.quick or self.args.postgres:
            variants.append(("postgres", True, PG_URL))
        names = ("messages",) if self.quick else ("messages", "messages_stream")
        picked = [s for s in self.scenarios if s.name in names]
        for variant, ledger, db in variants:
            gw = Orgate(self.tmp, self.args.base_port + 1, self.upstream, ledger=ledger, database_url=db,
                        variant=f"ledger-{variant}", cpu=GATEWAY_CPU)

            def body(gw: Orgate = gw, variant: str = variant) -> None:
                for sc in picked:
                    for key in ("budget", "nobudget"):
                        headers = {**sc.extra_headers, **gw.headers(key)}
                        run_wrk(gw.url(sc.path), sc.body, headers, 16, 1, self.tmp / "wrk", gw)
                        for c in conns:
                            r = run_wrk(gw.url(sc.path), sc.body, headers, c, self.seconds, self.tmp / "wrk", gw)
                            r["ledger"] = variant
                            self.record("orgate", "ledger", sc, c, r, key)

            try:
                self.with_gateway(gw, lambda _g, b=body: b())  # type: ignore[misc]
            except Exception as e:  # e.g. PostgreSQL not reachable
                self.note(f"ledger variant {variant} failed: {e}")

    def soak(self, gw: Gateway) -> None:
        """Non-streaming load in chunks until soak_requests, sampling RSS after each chunk."""
        sc = next(s for s in scenarios() if s.name == "messages")
        headers = gw.headers(DEFAULT_KEY)
        total_target = self.args.soak_requests
        chunk = 2.0 if self.quick else 10.0
        samples, total, t0 = [], 0, time.monotonic()
        deadline = t0 + (self.args.soak_max_seconds or 1e9)
        while total < total_target and time.monotonic() < deadline:
            r = run_wrk(gw.url(sc.path), sc.body, headers, 64, chunk, self.tmp / "wrk", gw)
            total += r.get("ok", 0)
            samples.append({"requests": total, "t_s": round(time.monotonic() - t0, 1), **gw.memory(),
                            "rps": r.get("rps"), "errors": r.get("error_count")})
            self.log(f"soak: {total} requests, rss {samples[-1]['rss_mb']} MB")
            if r.get("ok", 0) == 0:
                break
        ref_at = max(1, total_target // 10)  # "RSS at 100k vs 1M": the sample at 10% of the run
        ref = next((s for s in samples if s["requests"] >= ref_at), samples[0] if samples else None)
        end = samples[-1] if samples else None
        if ref is end and len(samples) > 1:  # a short soak never reaches 10%: compare first and last samples
            ref = samples[0]
        growth = round((end["rss_mb"] / ref["rss_mb"] - 1) * 100, 1) if ref and end and ref["rss_mb"] else None
        self.result["soak"] = {"target": gw.name, "requests": total, "reference": ref, "end": end,
                               "growth_pct": growth, "samples": samples}

    def profile(self, gw: Gateway) -> None:
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(pyspy).exists():
            self.note("profile skipped: py-spy not installed (pip install py-spy)")
            return
        prof = {}
        for name, key, conns in (("messages", "budget", 64), ("messages", "budget", 1), ("messages", "nobudget", 64),
                                 ("messages_stream", "budget", 64), ("chat_stream", "budget", 64),
                                 ("claude_code_150k", "budget", 64)):
            sc = next((s for s in self.scenarios if s.name == name), None)
            if sc is None:
                continue
            if key != DEFAULT_KEY:
                name = f"{name}-{key}-key"
            if conns != 64:
                name = f"{name}-c{conns}"
            out = RESULTS / f"profile-{self.ts}-{name}.txt"
            raw = self.tmp / f"profile-{name}.raw"
            secs = 4 if self.quick else 15
            # --gil: sample only the thread holding the GIL, i.e. the Python work that bounds throughput
            # (an event loop waiting in epoll, or an idle thread pool, does not count).
            spy = subprocess.Popen([pyspy, "record", "-p", str(gw.pid), "-r", "250", "-d", str(secs), "-f", "raw",
                                    "--gil", "-o", str(raw), "--nonblocking"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            r = run_wrk(gw.url(sc.path), sc.body, {**sc.extra_headers, **gw.headers(key)}, conns, secs, self.tmp / "wrk",
                        gw)
            _, err = spy.communicate(timeout=secs + 60)
            if not raw.exists():
                self.note(f"py-spy failed: {err[-500:]}")
                return
            text = summarize_profile(raw.read_text())
            out.write_text(f"# py-spy record --gil -r 250 -d {secs} on orgate under wrk -c{conns}, scenario {name} "
                           f"(key: {key}); {r.get('rps')} req/s under the profiler\n{text}")
            prof[name] = str(out.relative_to(BENCH.parent))
            self.log(f"profile written to {out}")
        self.result["profiles"] = prof


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="CI smoke: ~1 s per run, c=1 and 16, short soak (< 60 s)")
    ap.add_argument("--litellm", action="store_true", help="also run LiteLLM's proxy (bench/.venv-litellm)")
    ap.add_argument("--postgres", action="store_true", help="in --quick, also run the ledger on PostgreSQL")
    ap.add_argument("--skip-ledger", action="store_true", help="skip the ledger on/off matrix")
    ap.add_argument("--profile", action="store_true", help="py-spy profile of orgate under load")
    ap.add_argument("--duration", type=float, help="seconds per wrk run (default 8, quick 1)")
    ap.add_argument("--concurrency", type=int, nargs="+", help="default 1 16 64 256 (quick: 1 16)")
    ap.add_argument("--scenario", nargs="+", help="messages messages_stream chat_stream claude_code_150k")
    ap.add_argument("--soak-requests", type=int, help="soak length in requests (default 1,000,000; quick 20,000)")
    ap.add_argument("--soak-max-seconds", type=float, help="stop the soak after this long (default: none; quick 6)")
    ap.add_argument("--base-port", type=int, default=18900, help="upstream port; gateways use the next two")
    ap.add_argument("--out", help="JSON path (default bench/results/<timestamp>.json)")
    a = ap.parse_args(argv)
    if a.soak_requests is None:
        a.soak_requests = 20_000 if a.quick else 1_000_000
    if a.soak_max_seconds is None and a.quick:
        a.soak_max_seconds = 4
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    suite = Suite(args)
    res = suite.run()
    out = Path(args.out) if args.out else RESULTS / f"{suite.ts}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(table(res))
    print(f"\nJSON: {out}")
    ok_orgate = sum(r.get("ok", 0) for r in res["runs"] if r.get("target") == "orgate")
    if ok_orgate == 0:
        print("bench: orgate answered no request successfully; the suite is broken", file=sys.stderr)
        return 1
    return 0
