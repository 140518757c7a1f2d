"""`orgate serve --workers N`: N processes serving one port on one host.

uvicorn's supervisor binds the port once and hands the listening socket to N spawned workers (the kernel
spreads connections over them); it restarts a worker that dies and, on SIGTERM or SIGINT, sends SIGTERM to
each worker, which stops accepting and drains its in-flight requests and streams for
`server.shutdown_grace_seconds` before flushing its ledger, exactly as one process does.

Before the workers start, the supervisor runs the migrations and creates the server secret once (the
workers must sign sessions with the same secret), then starts the host state service (host_state.py) that
the workers share rate-limit counters and circuit state through. Each worker is a full orgate instance
with its own instance id: budgets hold across workers through the database leases, exactly as across hosts.

Metrics: a scrape reaches one worker, so with metrics on the supervisor points prometheus_client's
multiprocess mode at a private directory (PROMETHEUS_MULTIPROC_DIR, unless the operator set one): every
worker writes its values there and any worker's /metrics sums them all. A replacement worker drops the live
gauges of workers that died (their counters stay counted, as Prometheus expects of a counter).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from orgate.config import Settings, load_settings
from orgate.observe.metrics import MULTIPROCESS_ENV

SUPERVISED = "ORGATE_SUPERVISED_BY"  # set for workers: the supervisor's pid (no setting has this name)
HOST_SOCKET = "ORGATE_HOST_STATE_SOCKET"  # set for workers: the host state service's unix socket


def resolve_workers(value: int | str | None) -> int:
    """`auto` is the number of cores this process may run on; otherwise a positive integer."""
    if value is None:
        return 1
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if not value.strip().isdigit():
            raise ValueError("server.workers: must be a positive integer or 'auto'")
        value = int(value)
    if value < 1:
        raise ValueError("server.workers: must be a positive integer or 'auto'")
    return value


def worker_app() -> Any:
    """The ASGI app of one worker (uvicorn calls this factory in each spawned process)."""
    from orgate.server.app import create_app

    forget_dead_workers_gauges()
    return create_app(load_settings())


def forget_dead_workers_gauges() -> None:
    """Live gauges (streams in flight, ledger queue, open circuits) of a worker that died would be summed
    forever; its files are named `<kind>_<pid>.db`, so drop those whose process is gone."""
    from orgate.observe.metrics import worker_exited

    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory or not os.path.isdir(directory):
        return
    pids = {name.rsplit("_", 1)[-1][:-3] for name in os.listdir(directory) if name.endswith(".db")}
    for pid in filter(str.isdigit, pids):
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            worker_exited(int(pid))
        except PermissionError:  # alive, someone else's
            pass


def __getattr__(name: str) -> Any:
    """`GuardedProtocol`: the read-limiting HTTP protocol (server/guard.py) built in each worker from its own
    settings. uvicorn imports it by name there; a class made at run time cannot be pickled to a spawned worker."""
    if name == "GuardedProtocol":
        from orgate.server.guard import guarded_protocol, read_limits

        cls = globals()[name] = guarded_protocol(read_limits(load_settings().server))
        return cls
    raise AttributeError(name)


def serve_workers(s: Settings, host: str, port: int, n: int, config_path: str | None, uvicorn_kwargs: dict[str, Any]) -> int:
    import uvicorn

    from orgate.server.app import load_secret
    from orgate.server.host_state import HostStateService
    from orgate.store.db import upgrade

    if config_path:  # the workers load the same settings
        os.environ["ORGATE_CONFIG"] = os.path.abspath(config_path)
    upgrade(s.db_url)
    load_secret(s)
    service = HostStateService(s).start()
    metrics_dir = None
    if s.metrics.enabled and not os.environ.get(MULTIPROCESS_ENV):
        metrics_dir = os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="orgate-metrics-")  # 0700
    os.environ[SUPERVISED] = str(os.getpid())
    os.environ[HOST_SOCKET] = service.path
    print(f"orgate supervisor {os.getpid()}: {n} workers on http://{host}:{port}", file=sys.stderr)
    try:
        # A worker that misses health pings for 30 s is killed and replaced (uvicorn's default, 5 s, kills
        # workers that are merely starved on a busy host, losing their in-flight requests).
        uvicorn.run("orgate.server.workers:worker_app", factory=True, workers=n, host=host, port=port,
                    timeout_worker_healthcheck=30, **{**uvicorn_kwargs, "http": f"{__name__}:GuardedProtocol"})
    finally:
        service.stop()
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
