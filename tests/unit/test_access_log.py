"""The access log (logs.py): one JSON object per line, each line ending in exactly one newline."""

from __future__ import annotations

import io

import orjson

from orgate.errors import InvalidRequest
from orgate.logs import AccessLog
from orgate.pipeline import Exchange


def test_lines_are_one_json_object_each_ending_in_one_newline() -> None:
    out = io.BytesIO()
    log = AccessLog(stream=out)
    ex = Exchange("req_1", api="anthropic")
    ex.ttft_ms = 3
    log.write(ex, None)
    log.write(Exchange("req_2", api="openai-chat", endpoint="chat/completions"), InvalidRequest("bad \n input"))
    log.close()
    text = out.getvalue()
    assert text.endswith(b"\n") and not text.endswith(b"\n\n") and text.count(b"\n") == 2
    first, second = (orjson.loads(line) for line in text.splitlines())
    assert first["request_id"] == "req_1" and first["status"] == 200 and first["ttft_ms"] == 3
    assert second["status"] == 400 and second["error"] == "bad \n input" and second["endpoint"] == "chat/completions"
