"""OpenTelemetry tracing, off by default; on with the standard OTEL_* variables and the `otel` extra installed.

Turned on by `OTEL_TRACES_EXPORTER` (otlp or console) or an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keep it off.
Everything else (protocol, headers, sampler, service name, resource attributes, batch delays, propagators)
is read by the OpenTelemetry SDK from its own variables. Without the extra nothing is imported and the
request path pays one `is None` test.

Spans: one SERVER span per API request (continuing an incoming W3C `traceparent`), one CLIENT span per
upstream attempt under it (its context goes upstream as `traceparent`), with the GenAI semantic conventions'
attributes. The successful attempt's span stays open until the response is settled, so it carries the usage.
Prompts go into spans only when the operator turned prompt logging on (`server.log_prompts`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import orjson

log = logging.getLogger("orgate.tracing")

# gen_ai.provider.name values of the GenAI semantic conventions, by provider type.
GENAI_PROVIDER = {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai",
                  "openai": "openai", "openai_compatible": "openai"}
OPERATION = {"messages": "chat", "chat/completions": "chat", "responses": "chat", "count_tokens": "count_tokens"}


def enabled_by_env(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return bool(exporter or endpoint)


def from_env(log_prompts: bool = False) -> Tracing | None:
    """A Tracing when the environment asks for it and the SDK is installed, else None (and a warning if the
    operator asked for tracing without the extra)."""
    if not enabled_by_env():
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("OTEL_* tracing is configured but OpenTelemetry is not installed: pip install 'orgate[otel]'")
        return None
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or "orgate"})
    provider = TracerProvider(resource=resource)
    for exporter in _exporters(ConsoleSpanExporter):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, log_prompts)


def _exporters(console: Any) -> list[Any]:
    names = [n.strip() for n in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").lower().split(",") if n.strip()]
    out: list[Any] = []
    for name in names:
        if name == "console":
            out.append(console())
        elif name == "otlp":
            exporter = _otlp_exporter()
            if exporter is not None:
                out.append(exporter)
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported by orgate (otlp, console)", name)
    return out


def _otlp_exporter() -> Any:
    proto = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
             or "http/protobuf")
    try:
        if proto == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    except ImportError:
        log.warning("no OTLP exporter for protocol %s: pip install 'orgate[otel]' (grpc: "
                    "opentelemetry-exporter-otlp-proto-grpc)", proto)
        return None
    return OTLPSpanExporter()


class Tracing:
    def __init__(self, provider: Any, log_prompts: bool = False) -> None:
        try:
            from opentelemetry import context, propagate, trace
        except ImportError as e:  # only built by from_env, which checked; a clear message all the same
            raise RuntimeError("OpenTelemetry is not installed: pip install 'orgate[otel]'") from e

        self.provider = provider
        self.tracer = provider.get_tracer("orgate")
        self.log_prompts = log_prompts
        self._trace, self._context, self._propagate = trace, context, propagate
        self._server, self._client = trace.SpanKind.SERVER, trace.SpanKind.CLIENT

    # -- server span ------------------------------------------------------------------------------------
    def start_request(self, method: str, path: str, headers: dict[str, str]) -> Any:
        """Starts the request's SERVER span as the current span; returns a token for `end_request`."""
        parent = self._propagate.extract(headers)
        span = self.tracer.start_span(f"{method} {path}", context=parent, kind=self._server,
                                      attributes={"http.request.method": method, "url.path": path,
                                                  "http.route": path})
        return span, self._context.attach(self._trace.set_span_in_context(span, parent))

    def end_request(self, token: Any, status: int | None) -> None:
        span, ctx_token = token
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
                span.set_attribute("error.type", str(status))
        span.end()
        self._context.detach(ctx_token)

    # -- attempt spans ----------------------------------------------------------------------------------
    def start_attempt(self, ex: Any, target: Any, extra_headers: dict[str, str]) -> Any:
        """A CLIENT span for one upstream call; its context is propagated in `extra_headers`."""
        op = OPERATION.get(ex.endpoint, "chat")
        span = self.tracer.start_span(f"{op} {target.upstream_model}", kind=self._client, attributes={
            "gen_ai.operation.name": op,
            "gen_ai.provider.name": GENAI_PROVIDER.get(target.provider_type, target.provider_type),
            "gen_ai.request.model": target.upstream_model,
            "orgate.deployment": target.label,
        })
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier, context=self._trace.set_span_in_context(span))
        extra_headers.update(carrier)
        return span

    def end_attempt(self, span: Any, outcome: str, step: str) -> None:
        span.set_attribute("orgate.attempt.outcome", outcome)
        span.set_attribute("orgate.attempt.step", step)
        if outcome.startswith("http_"):
            span.set_attribute("http.response.status_code", int(outcome[5:]) if outcome[5:].isdigit() else 0)
        if outcome != "ok":
            span.set_attribute("error.type", outcome)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
            span.end()

    # -- settlement -------------------------------------------------------------------------------------
    def finish(self, ex: Any, status: int, error_kind: str | None) -> None:
        """GenAI attributes on the server span and the successful attempt's span, which ends here."""
        attrs: dict[str, Any] = {"gen_ai.operation.name": OPERATION.get(ex.endpoint, "chat"),
                                 "orgate.surface": ex.api, "orgate.attempts": ex.attempts}
        if ex.model:
            attrs["gen_ai.request.model"] = ex.model
        if ex.target is not None:
            attrs["gen_ai.provider.name"] = GENAI_PROVIDER.get(ex.target.provider_type, ex.target.provider_type)
            attrs["gen_ai.response.model"] = ex.target.upstream_model
        u = ex.usage
        attrs["gen_ai.usage.input_tokens"] = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
        attrs["gen_ai.usage.output_tokens"] = u.output_tokens
        attrs["gen_ai.usage.cache_read.input_tokens"] = u.cache_read_tokens
        attrs["gen_ai.usage.cache_creation.input_tokens"] = u.cache_write_tokens
        if error_kind:
            attrs["error.type"] = error_kind
        if self.log_prompts and ex.prompt:
            attrs["gen_ai.input.messages"] = _messages_of(ex.prompt)
        server = self._trace.get_current_span()
        server.set_attributes(attrs)
        span = ex.trace
        if span is not None:
            ex.trace = None
            span.set_attributes({k: v for k, v in attrs.items() if k.startswith("gen_ai.usage.")})
            if ex.target is not None:
                span.set_attribute("gen_ai.response.model", ex.target.upstream_model)
            if error_kind:
                span.set_attribute("error.type", error_kind)
            span.end()

    def shutdown(self) -> None:
        self.provider.shutdown()


def _messages_of(raw: bytes) -> str:
    """The request's messages as JSON (only with prompt logging on), cut to 64 KB."""
    try:
        body = orjson.loads(raw)
        msgs = body.get("messages", body.get("input")) if isinstance(body, dict) else None
        return orjson.dumps(msgs).decode()[:65536]
    except orjson.JSONDecodeError:
        return raw[:65536].decode("utf-8", "replace")
