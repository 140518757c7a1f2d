"""The stream relay's pieces on the bench's canned 21-event stream, per call: user-space instructions
(callgrind: the case run N times minus run 0 times, so start-up cancels; does not move with the machine's
load) or best-of-repeats wall time (timeit).

    python -m bench.stream_micro --tree /work/snap/main --tree . [--cases tee ...] [-n 300] [--timeit]

Cases: tee (UsageTee.feed on the whole stream, then finish), tee_split (the first frame, then the rest:
what relay_stream does when the request is alone), tee_64 (64-byte pieces), framer (SSEFramer.feed),
chat (what server/openai_api._translate_stream does per chunk: framer, tee.observe, ChatStreamEncoder),
encoder (ChatStreamEncoder.feed on the parsed events).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = ("tee", "tee_split", "tee_64", "framer", "chat", "encoder")


def _case(name: str):  # imported from the tree under test (first on sys.path)
    import orjson

    from bench.fake_upstream import message_sse
    from orgate.core.sse import SSEFramer
    from orgate.dialects.anthropic.sse import UsageTee
    from orgate.dialects.openai_chat.stream import ChatStreamEncoder

    body = message_sse()
    first = body.find(b"\n\n") + 2
    pieces = [body[i:i + 64] for i in range(0, len(body), 64)]
    objs = [orjson.loads(d) for _, d in SSEFramer().feed(body)]

    def tee(chunks=(body,)):
        t = UsageTee()
        for c in chunks:
            t.feed(c)
        t.finish()

    def chat():
        decoder, t = SSEFramer(), UsageTee()
        enc = ChatStreamEncoder(model="m", created=1, include_usage=False)
        out = []
        for event, data in decoder.feed(body) + decoder.finish():
            obj = t.observe(event, data)
            if obj is None:
                try:
                    obj = orjson.loads(data)
                except orjson.JSONDecodeError:
                    continue
            out.append(enc.feed(obj))
        return b"".join(out) + enc.finish()

    def encoder():
        enc = ChatStreamEncoder(model="m", created=1, include_usage=False)
        for o in objs:
            enc.feed(o)
        enc.finish()

    return {"tee": tee, "tee_split": lambda: tee((body[:first], body[first:])), "tee_64": lambda: tee(pieces),
            "framer": lambda: SSEFramer().feed(body) + SSEFramer().finish(), "chat": chat, "encoder": encoder}[name]


def _instructions(tree: str, case: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "cg.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
               "bench.stream_micro", "--run", case, "-n", str(n)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, str(Path(__file__).resolve().parents[1])])}
        # cwd elsewhere: `python -m` puts the working directory ahead of PYTHONPATH
        err = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, check=True).stderr
        return int(re.search(r"Collected : (\d+)", err).group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", action="append", default=[])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--timeit", action="store_true", help="best-of-30 wall time instead of instructions")
    ap.add_argument("--run", help=argparse.SUPPRESS)  # one case n times (under callgrind)
    a = ap.parse_args()
    if a.run:
        f = _case(a.run)
        f()  # warm: first-call caches do not count
        for _ in range(a.n):
            f()
        return 0
    for case in a.cases:
        for tree in a.tree or ["."]:
            if a.timeit:
                repo = str(Path(__file__).resolve().parents[1])
                code = (f"import sys; sys.path[:0] = [{tree!r}, {repo!r}]; from bench.stream_micro import _case; "
                        f"f = _case({case!r})")
                best = subprocess.run([sys.executable, "-c", code + "; import timeit; f(); print(min(timeit.repeat("
                                       f"f, number={a.n}, repeat=30)) / {a.n} * 1e6)"], capture_output=True, text=True,
                                      check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
                print(f"{case:10} {tree}: {float(best.stdout):.1f} us per call (best of 30)")
            else:
                per = (_instructions(tree, case, a.n) - _instructions(tree, case, 0)) // a.n
                print(f"{case:10} {tree}: {per:,} instructions per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
