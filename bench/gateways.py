"""Start and stop the gateways under test: orgate (this repo) and LiteLLM's proxy (its own virtualenv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.fake_upstream import MODEL, FakeUpstream, wait_http
from bench.procstat import cpu_seconds, memory_mb

BENCH = Path(__file__).resolve().parent
LITELLM_VENV = BENCH / ".venv-litellm"
FAKE_KEY = "sk-ant-fake-upstream-key"
STREAM_MODEL = f"fakesse/{MODEL}"  # a provider-prefixed name: orgate sends it to the provider named `fakesse`


def clean_env() -> dict[str, str]:
    """The caller's environment without any orgate/LiteLLM/Anthropic settings that could leak into a run."""
    drop = ("ORGATE_", "ANTHROPIC_", "LITELLM_", "OPENAI_", "DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY",
            "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


class Gateway:
    name = "gateway"
    port = 0
    proc: subprocess.Popen | None = None
    cpu = 1
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def memory(self) -> dict[str, float]:
        return memory_mb(self.pid)

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Orgate(Gateway):
    """orgate serve, one process (uvicorn + uvloop + httptools), pinned to one CPU."""

    _keys_by_dir: dict[str, dict[str, str]] = {}

    def __init__(self, workdir: Path, port: int, upstream: FakeUpstream, *, ledger: bool = True,
                 database_url: str | None = None, variant: str = "sqlite", cpu: int = 1, workers: int = 1) -> None:
        self.name = "orgate"
        self.workers = workers
        self.variant = variant
        self.port = port
        self.cpu = cpu
        # One data dir (and so one SQLite file and one pair of keys) per database, shared by the variants.
        self.dir = workdir / ("orgate-postgres" if database_url else "orgate-sqlite")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / f"orgate-{variant}.log"
        env = clean_env()
        env.update({
            "ORGATE_DATA_DIR": str(self.dir),
            "ORGATE_SERVER__PORT": str(port),
            "ORGATE_SERVER__HOST": "127.0.0.1",
            "ORGATE_SERVER__LOG_LEVEL": "warning",
            "ORGATE_PROVIDERS__ANTHROPIC__BASE_URL": upstream.base_json,
            "ORGATE_PROVIDERS__FAKESSE__TYPE": "anthropic",
            "ORGATE_PROVIDERS__FAKESSE__BASE_URL": upstream.base_sse,
            "ORGATE_PROVIDERS__FAKESSE__API_KEY": FAKE_KEY,
            "ANTHROPIC_API_KEY": FAKE_KEY,
            "ORGATE_LEDGER__ENABLED": "true" if ledger else "false",
        })
        if database_url:
            env["ORGATE_DATABASE_URL"] = database_url
        self.env = env
        self.keys = Orgate._keys_by_dir.setdefault(str(self.dir), {})

    def _cli(self, *args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "orgate", *args], env=self.env, cwd=self.dir,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"orgate {' '.join(args)} failed: {r.stderr[-2000:]}")
        return r.stdout

    def _create_key(self, *args: str) -> str:
        try:
            return json.loads(self._cli("keys", "create", *args, "--json"))["key"]
        except (RuntimeError, ValueError, KeyError):
            # `--json` has been broken at times; the plain output prints the key alone on its last line.
            out = self._cli("keys", "create", *args)
            return [ln.strip() for ln in out.splitlines() if ln.strip()][-1]

    def create_keys(self) -> None:
        tag = time.strftime("%Y%m%d%H%M%S")
        self.keys["nobudget"] = self._create_key("--name", f"bench-{tag}-nobudget")
        # A budget no run can exhaust, so that every request takes the reserve/settle path and none is refused.
        self.keys["budget"] = self._create_key("--name", f"bench-{tag}-budget", "--budget", "10000000")

    def start(self) -> None:
        if not self.keys:
            self.create_keys()
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(self.cpu), sys.executable, "-m", "orgate", "serve", "--workers", str(self.workers)],
            env=self.env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_http(self.url("/health"), timeout=60, proc=self.proc)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.log_tail()}") from None

    def headers(self, key: str = "nobudget") -> dict[str, str]:
        k = self.keys[key]
        return {"x-api-key": k, "authorization": f"Bearer {k}", "anthropic-version": "2023-06-01"}


LITELLM_CONFIG = """
model_list:
  - model_name: {model}
    litellm_params:
      model: anthropic/{model}
      api_base: {json_base}
      api_key: {key}
  - model_name: {stream_model}
    litellm_params:
      model: anthropic/{model}
      api_base: {sse_base}
      api_key: {key}
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  master_key: sk-bench-litellm-master
"""


class LiteLLM(Gateway):
    """LiteLLM's proxy with one worker, from its own virtualenv (bench/.venv-litellm), pinned to one CPU."""

    MASTER = "sk-bench-litellm-master"

    def __init__(self, workdir: Path, port: int, upstream: FakeUpstream, cpu: int = 1) -> None:
        self.name = "litellm"
        self.variant = "no-db"
        self.port = port
        self.cpu = cpu
        self.dir = workdir / "litellm"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "litellm.log"
        self.config = self.dir / "config.yaml"
        self.config.write_text(LITELLM_CONFIG.format(model=MODEL, stream_model=STREAM_MODEL, key=FAKE_KEY,
                                                     json_base=upstream.base_json, sse_base=upstream.base_sse))

    @staticmethod
    def available() -> tuple[bool, str]:
        exe = LITELLM_VENV / "bin" / "litellm"
        if not exe.exists():
            return False, (f"{exe} not found: create it with `python3 -m venv bench/.venv-litellm && "
                           "bench/.venv-litellm/bin/pip install 'litellm[proxy]'`")
        return True, ""

    @staticmethod
    def version() -> str | None:
        py = LITELLM_VENV / "bin" / "python"
        r = subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                           capture_output=True, text=True)
        return r.stdout.strip() or None

    def start(self) -> None:
        env = clean_env()
        env.update({"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "LITELLM_MODE": "PRODUCTION",
                    "DISABLE_SCHEMA_UPDATE": "True", "ANTHROPIC_API_KEY": FAKE_KEY})
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(self.cpu), str(LITELLM_VENV / "bin" / "litellm"), "--config", str(self.config),
             "--host", "127.0.0.1", "--port", str(self.port), "--num_workers", "1"],
            env=env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_http(self.url("/health/liveliness"), timeout=180, proc=self.proc)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.log_tail()}") from None

    def headers(self, key: str = "nobudget") -> dict[str, str]:
        return {"x-api-key": self.MASTER, "authorization": f"Bearer {self.MASTER}", "anthropic-version": "2023-06-01"}
