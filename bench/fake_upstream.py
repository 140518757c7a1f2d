"""The near-zero-cost fake upstream: nginx serving canned Anthropic JSON and SSE bodies.

nginx cannot look at the request body's `stream` field, so the two answers live at two paths of one server:
  POST /v1/messages      -> canned Messages JSON   (application/json)
  POST /sse/v1/messages  -> canned Messages SSE    (text/event-stream, ~20 events)
A gateway's provider base_url is `http://127.0.0.1:PORT` for the JSON answer and `http://127.0.0.1:PORT/sse`
for the SSE answer. POST to a static file is made possible with the `error_page 405 =200` trick: the static
module refuses POST with 405, and the error page redirect serves the same file as GET with status 200.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

MODEL = "claude-sonnet-4-5-20250929"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def message_json() -> bytes:
    body = {
        "id": "msg_01BenchFakeUpstream000000",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello! This is a canned answer from the benchmark's fake upstream."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 25,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 16,
            "service_tier": "standard",
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


TEXT_DELTAS = [
    "Hello", "!", " This", " is", " a", " canned", " answer", " from", " the", " benchmark", "'s",
    " fake", " upstream", ",", " streamed.",
]


def message_sse() -> bytes:
    ev = [
        _event("message_start", {"type": "message_start", "message": {
            "id": "msg_01BenchFakeUpstream000000", "type": "message", "role": "assistant", "model": MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": 1, "service_tier": "standard"}}}),
        _event("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
        _event("ping", {"type": "ping"}),
    ]
    for t in TEXT_DELTAS:
        ev.append(_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": t}}))
    ev += [
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": 16}}),
        _event("message_stop", {"type": "message_stop"}),
    ]
    return "".join(ev).encode()


def validate_bodies() -> dict:
    """Parse both canned bodies with the anthropic SDK's types; raises if either is not a valid answer."""
    from anthropic.types import Message, RawMessageStreamEvent
    from pydantic import TypeAdapter

    msg = Message.model_validate_json(message_json())
    adapter = TypeAdapter(RawMessageStreamEvent)
    names = []
    for block in message_sse().decode().strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        if lines["event"] == "ping":  # the SDK skips pings; they are not in its event union
            assert json.loads(lines["data"]) == {"type": "ping"}
            names.append("ping")
            continue
        evt = adapter.validate_json(lines["data"])
        assert evt.type == lines["event"], (evt.type, lines["event"])
        names.append(evt.type)
    return {"json_ok": msg.type == "message", "sse_events": len(names), "sse_types": sorted(set(names))}


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_buffer_size 1m;
  client_max_body_size 64m;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  etag off;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    root {dir}/www;
    location = /v1/messages {{
      default_type application/json;
      add_header request-id req_fake_upstream;
      error_page 405 =200 /static/message.json;
      return 405;
    }}
    location = /sse/v1/messages {{
      error_page 405 =200 /static/message.sse;
      return 405;
    }}
    location /static/ {{
      internal;
      types {{ application/json json; text/event-stream sse; }}
      add_header request-id req_fake_upstream;
      add_header cache-control no-cache;
    }}
  }}
}}
"""


class FakeUpstream:
    def __init__(self, workdir: Path, port: int, cpu: int = 0) -> None:
        self.dir = workdir.resolve() / "nginx"
        self.port = port
        self.cpu = cpu
        self.proc: subprocess.Popen | None = None

    @property
    def base_json(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_sse(self) -> str:
        return f"http://127.0.0.1:{self.port}/sse"

    def start(self) -> None:
        www = self.dir / "www" / "static"
        www.mkdir(parents=True, exist_ok=True)
        (www / "message.json").write_bytes(message_json())
        (www / "message.sse").write_bytes(message_sse())
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port))
        log = open(self.dir / "nginx.out", "wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(self.cpu), NGINX, "-c", str(conf), "-p", str(self.dir), "-e", str(self.dir / "nginx-error.log")],
            stdout=log, stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.base_json}/v1/messages", post=True)

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_http(url: str, post: bool = False, timeout: float = 60.0, headers: dict | None = None,
              data: bytes | None = None, proc: subprocess.Popen | None = None) -> int:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            req = urllib.request.Request(url, data=(data or b"{}") if post else None, headers=headers or {},
                                         method="POST" if post else "GET")
            with urllib.request.urlopen(req, timeout=5) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except Exception as e:  # not up yet
            last = e
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s: {last}")


if __name__ == "__main__":
    print(validate_bodies())
    print(len(message_sse()), "bytes of SSE")
