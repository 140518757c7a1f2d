"""The metrics' own CPU per request, measured in-process: the exact calls the pipeline makes for one
non-streaming request (attempt hooks, settlement, spend), with metrics on and off, interleaved and repeated.

A load test on a shared, saturated machine cannot resolve a few microseconds out of ~800; this can, and its
figure divided by the load test's CPU per request bounds the overhead. Prints the spread of the repeats.

    .venv/bin/python -m bench.metrics_micro --n 200000 --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time

from orgate.core.target import Target
from orgate.core.usage import Usage
from orgate.observe.hooks import Observer
from orgate.observe.metrics import Metrics


class _Route:
    public_id = "claude-sonnet-4.5"


class _Key:
    id, name, prefix = 1, "bench", "sk-ant-bench"


class _Ex:
    """The Exchange fields the observer reads (the real dataclass needs the whole pipeline around it)."""

    def __init__(self) -> None:
        self.api, self.endpoint, self.model = "anthropic", "messages", "claude-sonnet-4.5"
        self.route, self.key = _Route(), _Key()
        self.target = Target("anthropic", "anthropic", "claude-sonnet-4-5-20250929")
        self.status, self.error_type, self.attempts = 200, None, 1
        self.started = time.monotonic()
        self.ttft_ms = 12
        self.usage = Usage(input_tokens=12, output_tokens=9)
        self.streaming = self.trace = self.prompt = None


def per_request_us(obs: Observer, n: int) -> float:
    target = Target("anthropic", "anthropic", "claude-sonnet-4-5-20250929")
    t0 = time.process_time()
    for _ in range(n):
        ex = _Ex()
        before, after = obs.attempts(ex, {})
        before(target)
        after(target, "first", "ok")
        obs.request_done(ex, None)
        obs.spend(ex, 171)
    return (time.process_time() - t0) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    on, off = Observer(Metrics(), None), Observer(None, None)
    per_request_us(on, 1000)
    diffs = []
    for i in range(args.repeats):
        a, b = (per_request_us(on, args.n), per_request_us(off, args.n)) if i % 2 == 0 else \
            tuple(reversed((per_request_us(off, args.n), per_request_us(on, args.n))))
        diffs.append(a - b)
        print(f"repeat {i + 1}: on {a:.2f} us, off {b:.2f} us, metrics cost {a - b:.2f} us/request")
    print(f"metrics cost per request: median {statistics.median(diffs):.2f} us, min {min(diffs):.2f}, "
          f"max {max(diffs):.2f} (n={args.n} x {args.repeats})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
