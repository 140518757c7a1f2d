"""Client telemetry (OTLP/HTTP) from signed-in Claude Code: summarized per person, optionally relayed.

The decoding is opentelemetry-proto's (protobuf or the OTLP JSON mapping). What is kept per day and person:
the sum of each metric's data points (Claude Code exports delta temporality by default), split by the one
attribute that makes a metric readable (`type` for lines added/removed and tokens, `decision` for accept/
reject), and a count of log events by `event.name` (tool decisions by decision). Nothing here may fail the
client: any body that does not decode is still answered 200 and counted as `undecodable`.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Any

SIGNALS = {"/v1/metrics": "metrics", "/v1/logs": "logs", "/v1/traces": "traces"}
SPLIT_BY = ("type", "decision", "tool_name")
MAX_INFLATED = 16 * 1024 * 1024


def inflate(body: bytes, encoding: str | None) -> bytes:
    enc = (encoding or "").lower().strip()
    if enc == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif enc == "deflate":
        d = zlib.decompressobj()
    else:
        return body
    out = d.decompress(body, MAX_INFLATED)
    if d.unconsumed_tail:
        raise ValueError("telemetry body inflates past the limit")
    return out


def _request(signal: str) -> Any:
    if signal == "metrics":
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        return ExportMetricsServiceRequest()
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        return ExportLogsServiceRequest()
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return ExportTraceServiceRequest()


def decode(signal: str, body: bytes, content_type: str) -> Any:
    msg = _request(signal)
    if "json" in content_type:
        from google.protobuf import json_format

        json_format.Parse(body.decode("utf-8"), msg, ignore_unknown_fields=True)
    else:
        msg.ParseFromString(body)
    return msg


def _attrs(kvs: Any) -> dict[str, str]:
    out = {}
    for kv in kvs:
        v = kv.value
        which = v.WhichOneof("value")
        out[kv.key] = str(getattr(v, which)) if which else ""
    return out


def _name(base: str, attrs: dict[str, str]) -> str:
    for a in SPLIT_BY:
        if a in attrs:
            return f"{base}:{a}={attrs[a]}"[:200]
    return base[:200]


def summarize(signal: str, msg: Any) -> dict[str, float]:
    acc: dict[str, float] = defaultdict(float)
    if signal == "metrics":
        for rm in msg.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    if kind not in ("sum", "gauge"):
                        continue
                    for dp in getattr(m, kind).data_points:
                        value = dp.as_double if dp.WhichOneof("value") == "as_double" else dp.as_int
                        acc[_name(m.name, _attrs(dp.attributes))] += value
    elif signal == "logs":
        for rl in msg.resource_logs:
            for sl in rl.scope_logs:
                for rec in sl.log_records:
                    attrs = _attrs(rec.attributes)
                    event = attrs.get("event.name") or rec.body.string_value or "log"
                    acc[_name("event:" + event, attrs)] += 1
    else:
        acc["spans"] += sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)
    return dict(acc)


def empty_answer(content_type: str) -> tuple[bytes, bytes]:
    """OTLP success: an empty protobuf message, or `{}` for JSON."""
    if "json" in content_type:
        return b"{}", b"application/json"
    return b"", b"application/x-protobuf"
