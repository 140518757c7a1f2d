"""OpenTelemetry tracing end to end: orgate exports OTLP/HTTP (protobuf) to a real in-process receiver; the
span tree, the GenAI attributes and the W3C traceparent (continued from the client, sent to the fake
upstream) are read back from what was exported."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import anthropic
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.fakes.anthropic_fake import FakeAnthropic, Reply, error
from tests.gateway import Gateway
from tests.observe.receiver import Receiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
SECRET_PROMPT = "the secret plans for tomorrow"
SONNET, HAIKU = "claude-sonnet-4.5", "claude-haiku-4.5"
SERVER, CLIENT = 2, 3  # Span.SpanKind values in the OTLP protobuf


def _value(v):  # type: ignore[no-untyped-def]
    return getattr(v, v.WhichOneof("value"))


def exported_spans(receiver: Receiver) -> list[dict]:
    spans = []
    for req in receiver.requests:
        if req["path"] != "/v1/traces":
            continue
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(req["body"])
        for rs in msg.resource_spans:
            service = {a.key: _value(a.value) for a in rs.resource.attributes}.get("service.name")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append({"name": s.name, "kind": s.kind, "trace_id": s.trace_id.hex(),
                                  "span_id": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                                  "service": service, "status": s.status.code, "start": s.start_time_unix_nano,
                                  "attrs": {a.key: _value(a.value) for a in s.attributes}})
    return spans


@pytest.fixture
def otlp():
    r = Receiver().start()
    yield r
    r.stop()


def test_span_tree_genai_attributes_and_traceparent_to_the_upstream(fake_session: FakeAnthropic,
                                                                    fake: FakeAnthropic, otlp: Receiver):
    gw = Gateway(fake_session.url, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_SERVICE_NAME": "orgate-test",
                                        "OTEL_BSP_SCHEDULE_DELAY": "100"}).start()
    try:
        fake.push(error(529, "overloaded_error", "Overloaded"), Reply(usage={"input_tokens": 21, "output_tokens": 7}),
                  Reply(usage={"input_tokens": 5, "output_tokens": 3}))
        c = anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key("traced"), max_retries=0,
                                default_headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"})
        c.messages.create(model=SONNET, max_tokens=50, messages=[{"role": "user", "content": SECRET_PROMPT}],
                          extra_body={"fallbacks": [{"model": HAIKU}]})
        with anthropic.Anthropic(base_url=gw.url, api_key=gw.create_key("traced2"), max_retries=0).messages.stream(
                model=SONNET, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
            s.get_final_message()
        upstream = [r["headers"] for r in fake.requests]
        deadline = time.time() + 20
        while time.time() < deadline and len(exported_spans(otlp)) < 5:
            time.sleep(0.1)
    finally:
        gw.stop()
    spans = exported_spans(otlp)
    assert len(spans) == 5, [s["name"] for s in spans]
    assert {s["service"] for s in spans} == {"orgate-test"}
    mine = sorted((s for s in spans if s["trace_id"] == TRACE_ID), key=lambda s: s["start"])
    server = [s for s in mine if s["kind"] == SERVER]
    attempts = [s for s in mine if s["kind"] == CLIENT]
    assert len(server) == 1 and len(attempts) == 2
    root = server[0]
    # The client's trace is continued: same trace id, the client's span is the parent.
    assert root["parent"] == CLIENT_SPAN and root["name"] == "POST /v1/messages"
    assert all(a["parent"] == root["span_id"] for a in attempts)
    a = root["attrs"]
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.model"] == SONNET and a["gen_ai.response.model"] == "claude-haiku-4-5-20251001"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (21, 7)
    assert a["http.response.status_code"] == 200 and a["orgate.attempts"] == 2
    failed, served = attempts
    assert failed["attrs"]["orgate.attempt.outcome"] == "http_529" and failed["attrs"]["error.type"] == "http_529"
    assert failed["status"] == 2  # STATUS_CODE_ERROR
    assert failed["attrs"]["gen_ai.request.model"] == "claude-sonnet-4-5-20250929"
    assert served["attrs"]["orgate.attempt.outcome"] == "ok" and served["attrs"]["orgate.attempt.step"] == "fallback"
    assert served["attrs"]["gen_ai.request.model"] == "claude-haiku-4-5-20251001"
    assert (served["attrs"]["gen_ai.usage.input_tokens"], served["attrs"]["gen_ai.usage.output_tokens"]) == (21, 7)
    # traceparent went upstream: the trace id, and the span of the attempt that made each call as the parent.
    assert [h["traceparent"] for h in upstream[:2]] == [f"00-{TRACE_ID}-{failed['span_id']}-01",
                                                        f"00-{TRACE_ID}-{served['span_id']}-01"]
    # The stream without an incoming traceparent: a new trace of its own, the attempt span carries the usage.
    other = [s for s in spans if s["trace_id"] != TRACE_ID]
    assert {s["kind"] for s in other} == {SERVER, CLIENT} and len({s["trace_id"] for s in other}) == 1
    stream_attempt = next(s for s in other if s["kind"] == CLIENT)
    assert stream_attempt["attrs"]["gen_ai.usage.output_tokens"] == 3
    assert upstream[2]["traceparent"].split("-")[2] == stream_attempt["span_id"]
    # No prompt in any span (prompt logging is off).
    assert SECRET_PROMPT not in repr(spans)


def test_prompts_in_spans_only_with_prompt_logging(fake: FakeAnthropic):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from orgate.observe.tracing import Tracing
    from orgate.pipeline import Exchange

    for log_prompts in (False, True):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        t = Tracing(provider, log_prompts=log_prompts)
        ex = Exchange("req_1", api="anthropic", model=SONNET)
        ex.prompt = b'{"model":"x","messages":[{"role":"user","content":"' + SECRET_PROMPT.encode() + b'"}]}'
        token = t.start_request("POST", "/v1/messages", {})
        t.finish(ex, 200, None)
        t.end_request(token, 200)
        (span,) = exporter.get_finished_spans()
        assert (SECRET_PROMPT in repr(dict(span.attributes))) is log_prompts


def test_without_otel_variables_orgate_loads_no_tracing_sdk():
    """No tracer, no exporter, no propagator. (redis-py, when OpenTelemetry is installed, imports the OTel API
    for its own optional instrumentation; that is redis's, and costs orgate's request path nothing.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["ORGATE_DATA_DIR"] = "/tmp/orgate-otel-off"
    code = ("import sys; from orgate.config import load_settings; from orgate.server.app import App; "
            "a = App(load_settings()); assert a.tracing is None; "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', "
            "'opentelemetry.exporter', 'opentelemetry.propagate'))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
