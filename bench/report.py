"""Reporting for the suite: the issue's targets, the printed table, versions, machine, profile summaries."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

from bench.gateways import LiteLLM


def _func(frame: str) -> str:
    """`name (path/file.py:123)` -> `name (path/file.py)`: py-spy's raw frames carry line numbers."""
    head, sep, tail = frame.rpartition(":")
    return f"{head})" if sep and tail.rstrip(")").isdigit() else frame


def _package(frame: str) -> str:
    path = frame[frame.find("(") + 1 :]
    for name in ("orgate/", "aiohttp/", "uvicorn/", "sqlalchemy/", "aiosqlite/", "asyncpg/", "yarl/", "multidict/",
                 "concurrent/futures", "threading", "logging/", "asyncio/", "urllib/", "netrc", "uuid", "json", "os>"):
        if name in path:
            return name.strip("/>")
    return path.split("/")[0].split(":")[0] or "?"


def summarize_profile(raw: str, top: int = 30) -> str:
    """Self time by function and by package, and inclusive time by function, from py-spy's raw output."""
    self_c: dict[str, int] = {}
    pkg: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        k = int(n)
        total += k
        frames = [_func(f) for f in stack.split(";")]
        leaf = frames[-1]
        self_c[leaf] = self_c.get(leaf, 0) + k
        pkg[_package(leaf)] = pkg.get(_package(leaf), 0) + k
        for f in set(frames):
            incl[f] = incl.get(f, 0) + k
    total = total or 1
    lines = [f"total samples: {total}", "", "## self time by package / module"]
    lines += [f"{100 * n / total:6.2f}%  {f}" for f, n in sorted(pkg.items(), key=lambda x: -x[1])[:20]]
    lines += ["", "## self time by function"]
    lines += [f"{100 * n / total:6.2f}%  {f}" for f, n in sorted(self_c.items(), key=lambda x: -x[1])[:top]]
    lines += ["", "## inclusive time by function"]
    lines += [f"{100 * n / total:6.2f}%  {f}" for f, n in sorted(incl.items(), key=lambda x: -x[1])[: top + 30]]
    return "\n".join(lines) + "\n"


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for p in ("orgate", "uvicorn", "uvloop", "httptools", "aiohttp", "orjson", "msgspec", "sqlalchemy", "aiosqlite",
              "asyncpg"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    for tool, args in (("nginx", ["-v"]), ("wrk", ["-v"])):
        r = subprocess.run([shutil.which(tool) or tool, *args], capture_output=True, text=True)
        out[tool] = (r.stderr or r.stdout).strip().splitlines()[0] if (r.stderr or r.stdout) else None
    ok, _ = LiteLLM.available()
    out["litellm"] = LiteLLM.version() if ok else None
    return out


def _find(runs: list[dict], target: str, scenario: str, c: int) -> dict | None:
    return next((r for r in runs if r.get("target") == target and r.get("scenario") == scenario
                 and r.get("concurrency") == c and "skipped" not in r), None)


def _ttfb(res: dict, target: str, scenario: str) -> dict | None:
    return next((t for t in res["ttfb"] if t["target"] == target and t["scenario"] == scenario), None)


def targets(res: dict) -> list[dict]:
    """Issue 18's targets (budgeted key, ledger on: the suite's default case), each with the achieved figure and
    whether it was met (reported, never enforced)."""
    runs = res["runs"]
    cs = res["config"]["concurrency"]
    busy = 64 if 64 in cs else max(cs)
    out: list[dict] = []

    def add(name: str, value, goal: str, met) -> None:  # type: ignore[no-untyped-def]
        out.append({"target": name, "achieved": value, "goal": goal, "met": met})

    def cpu(scenario: str, c: int, goal: float, label: str) -> None:
        r = _find(runs, "orgate", scenario, c)
        if r and r.get("error_count"):
            add(f"{label} CPU per request (c={c})", f"invalid: {r['error_count']} errors", f"<= {goal} ms", None)
        elif r and r.get("cpu_ms_per_req") is not None:
            add(f"{label} CPU per request (c={c})", f"{r['cpu_ms_per_req']:.3f} ms", f"<= {goal} ms",
                r["cpu_ms_per_req"] <= goal)

    o, lt = _find(runs, "orgate", "messages", busy), _find(runs, "litellm", "messages", busy)
    if o and lt and lt.get("rps"):
        ratio = round(o["rps"] / lt["rps"], 1)
        add(f"non-stream throughput vs LiteLLM per core (c={busy})", f"{ratio}x", ">= 60x", ratio >= 60)
    cpu("messages", busy, 0.25, "non-stream")
    cpu("messages", 1, 0.35, "non-stream")
    cpu("messages_stream", busy, 0.3, "stream")
    cpu("messages_stream", 1, 0.45, "stream")
    cpu("chat_stream", busy, 0.5, "chat stream (translation)")
    o1, u1 = _find(runs, "orgate", "messages", 1), _find(runs, "upstream", "messages", 1)
    if o1 and u1 and o1.get("ok"):
        a50 = round(o1["latency_ms"]["p50"] - u1["latency_ms"]["p50"], 3)
        add("non-stream added latency p50 (1 client)", f"{a50} ms", "<= 0.3 ms", a50 <= 0.3)
    ot, ut = _ttfb(res, "orgate", "messages_stream"), _ttfb(res, "upstream", "messages_stream")
    if ot and ut and ot["ok"]:
        d = round(ot["ttfb_ms"]["p50"] - ut["ttfb_ms"]["p50"], 3)
        add("stream TTFB added p50 (1 client)", f"{d} ms", "<= 0.3 ms", d <= 0.3)
    peak = max((r.get("peak_rss_mb") or 0 for r in runs + res["ledger"] + res.get("extra", [])
                if r.get("target") == "orgate"), default=0)
    soak = res.get("soak") or {}
    if soak.get("samples"):
        peak = max(peak, max(x["peak_rss_mb"] for x in soak["samples"]))
    if peak:
        add("peak RSS (all cases, 150 KB at c=256 included)", f"{peak} MB", "< 100 MB", peak < 100)
    if soak.get("growth_pct") is not None:
        add(f"RSS flat from {soak['reference']['requests']} to {soak['end']['requests']} requests",
            f"{soak['growth_pct']:+.1f}%", "within 10%", abs(soak["growth_pct"]) <= 10)
    return out


def table(res: dict) -> str:
    runs = res["runs"]
    lines = []
    hdr = (f"{'scenario':17} {'conc':>4} | {'upstream rps':>12} {'p50':>7} | {'orgate rps':>10} {'ratio':>6} "
           f"{'p50':>7} {'p90':>7} {'p99':>7} {'+p50':>6} {'err':>5} {'cpu/req':>8} {'rss':>6} |"
           f" {'litellm rps':>11} {'p50':>8} {'p99':>8} {'err':>5} {'cpu/req':>8} {'rss':>6} | {'org/llm':>7}")
    lines += [hdr, "-" * len(hdr)]
    scen = []
    for r in runs:
        if r["scenario"] not in scen:
            scen.append(r["scenario"])
    for sc in scen:
        for c in res["config"]["concurrency"]:
            u, o, lt = (_find(runs, t, sc, c) for t in ("upstream", "orgate", "litellm"))

            def f(x, k, sub=None, fmt="{:.1f}"):  # type: ignore[no-untyped-def]
                if not x:
                    return "-"
                v = x.get(k) if sub is None else (x.get(k) or {}).get(sub)
                return "-" if v is None else fmt.format(v)

            ratio = f"{o['rps'] / u['rps']:.2f}" if o and u and u.get("rps") else "-"
            added = (f"{o['latency_ms']['p50'] - u['latency_ms']['p50']:.2f}" if o and u and o.get("latency_ms")
                     else "-")
            ol = f"{o['rps'] / lt['rps']:.1f}x" if o and lt and lt.get("rps") else "-"
            lines.append(
                f"{sc:17} {c:>4} | {f(u, 'rps'):>12} {f(u, 'latency_ms', 'p50', '{:.2f}'):>7} | "
                f"{f(o, 'rps'):>10} {ratio:>6} {f(o, 'latency_ms', 'p50', '{:.2f}'):>7} "
                f"{f(o, 'latency_ms', 'p90', '{:.2f}'):>7} {f(o, 'latency_ms', 'p99', '{:.2f}'):>7} {added:>6} "
                f"{f(o, 'error_count', fmt='{}'):>5} {f(o, 'cpu_ms_per_req', fmt='{:.3f}'):>8} "
                f"{f(o, 'peak_rss_mb', fmt='{:.0f}'):>6} | {f(lt, 'rps'):>11} "
                f"{f(lt, 'latency_ms', 'p50', '{:.2f}'):>8} {f(lt, 'latency_ms', 'p99', '{:.2f}'):>8} "
                f"{f(lt, 'error_count', fmt='{}'):>5} {f(lt, 'cpu_ms_per_req', fmt='{:.3f}'):>8} "
                f"{f(lt, 'peak_rss_mb', fmt='{:.0f}'):>6} | {ol:>7}")
    lines.append("latency in ms; ratio = orgate rps / upstream rps; +p50 = orgate p50 - upstream p50; "
                 "cpu/req = gateway CPU ms per request (= CPU s per 1,000 requests); rss = peak RSS MB")
    if res.get("extra"):
        lines += ["", f"{'extra rows: key':22} {'scenario':17} {'conc':>4} {'rps':>9} {'p50':>7} {'p99':>7} {'err':>5} "
                      f"{'cpu/req':>8} {'rss':>6}"]
        for r in res["extra"]:
            lines.append(f"{r['key']:22} {r['scenario']:17} {r['concurrency']:>4} {r.get('rps', 0):>9} "
                         f"{r.get('latency_ms', {}).get('p50', 0):>7} {r.get('latency_ms', {}).get('p99', 0):>7} "
                         f"{r.get('error_count', 0):>5} {r.get('cpu_ms_per_req') or 0:>8.3f} "
                         f"{r.get('peak_rss_mb') or 0:>6.0f}")
    if res["ttfb"]:
        lines += ["", f"{'TTFB (1 client, sequential)':30} {'target':9} {'ttfb p50':>9} {'p99':>8} {'last p50':>9} "
                      f"{'p99':>8} {'events':>6} {'ok':>5}"]
        for t in res["ttfb"]:
            lines.append(f"{t['scenario']:30} {t['target']:9} {t['ttfb_ms']['p50']:>9} {t['ttfb_ms']['p99']:>8} "
                         f"{t['last_byte_ms']['p50']:>9} {t['last_byte_ms']['p99']:>8} {t['events_p50']:>6} "
                         f"{t['ok']:>5}")
    if res["ledger"]:
        lines += ["", f"{'ledger':12} {'key':9} {'scenario':17} {'conc':>4} {'rps':>9} {'p50':>7} {'p99':>7} "
                      f"{'err':>5} {'cpu/req':>8}"]
        for r in res["ledger"]:
            lines.append(f"{r['ledger']:12} {r['key']:9} {r['scenario']:17} {r['concurrency']:>4} {r['rps']:>9} "
                         f"{r['latency_ms']['p50']:>7} {r['latency_ms']['p99']:>7} {r['error_count']:>5} "
                         f"{r.get('cpu_ms_per_req') or 0:>8.3f}")
    soak = res.get("soak") or {}
    if soak.get("samples"):
        lines += ["", f"soak ({soak['target']}): {soak['requests']} requests; RSS {soak['reference']['rss_mb']} MB at "
                      f"{soak['reference']['requests']} -> {soak['end']['rss_mb']} MB at {soak['end']['requests']} "
                      f"({soak['growth_pct']:+.1f}%), peak {soak['end']['peak_rss_mb']} MB"]
    if res.get("targets"):
        lines += ["", f"{'target (issue 18; budgeted key, ledger on)':55} {'achieved':>12} {'goal':>12}  met"]
        for t in res["targets"]:
            met = {True: "yes", False: "NO", None: "-"}[t["met"]]
            lines.append(f"{t['target']:55} {t['achieved']:>12} {t['goal']:>12}  {met}")
    lines.append(f"orgate rows use the {res.get('default_key', 'nobudget')} key; load average "
                 f"{res['machine'].get('loadavg_start')} -> {res['machine'].get('loadavg_end')}")
    for n in res.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)
