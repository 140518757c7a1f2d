"""Driving the real Claude Code's interactive /login under tmux, with a private /etc/claude-code.

Claude Code reads the gateway address only from the machine's managed settings (/etc/claude-code on Linux),
which would change every other Claude Code on the machine. So the client runs in its own mount namespace
(`unshare -m`, root only) where a temporary directory is bind-mounted over /etc/claude-code; its tmux
server runs inside that namespace on a private socket, and this module types keys and reads the screen.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CODE = re.compile(r"\b([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})\b")
ETC = Path("/etc/claude-code")


def available() -> str | None:
    """Why this route cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (a private mount namespace for /etc/claude-code)"
    for tool in ("unshare", "tmux"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def in_namespace(policy_dir: Path, command: str) -> list[str]:
    """A command run with `policy_dir` mounted over /etc/claude-code, visible to nothing else."""
    ETC.mkdir(exist_ok=True)  # an empty mount point; the real machine's Claude Codes see no policy in it
    script = f"mount --bind {shlex.quote(str(policy_dir))} {ETC} && exec {command}"
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]


class Tmux:
    def __init__(self, socket: str, log: Path) -> None:
        self.socket = socket
        self.log = log

    def start(self, policy_dir: Path, command: str, env: dict[str, str], cwd: Path) -> None:
        inner = f"tmux -L {self.socket} new-session -d -x 160 -y 50 -s cc {shlex.quote(command)}"
        subprocess.run(in_namespace(policy_dir, inner), env=env, cwd=cwd, check=True, timeout=30)

    def screen(self) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "cc"], capture_output=True,
                             text=True, timeout=10).stdout
        with self.log.open("a") as f:
            f.write(f"\n----- {time.strftime('%H:%M:%S')} -----\n{out}")
        return out

    def keys(self, *keys: str) -> None:
        for k in keys:
            subprocess.run(["tmux", "-L", self.socket, "send-keys", "-t", "cc", k], check=True, timeout=10)
            time.sleep(0.4)

    def wait(self, pred: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}; last screen:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
