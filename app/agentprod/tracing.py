"""OpenTelemetry tracing: one trace per task, API → RocketMQ → worker → model → result.

Off by default. `configure` turns it on when the standard variables ask for an OTLP export:
`OTEL_TRACES_EXPORTER=otlp`, or an `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` with no `OTEL_TRACES_EXPORTER=none`; `OTEL_SDK_DISABLED=true`
wins over both. The exporter itself reads the rest of the `OTEL_EXPORTER_OTLP_*` variables
(endpoint, headers, timeout, protocol `http/protobuf` — the default — or `grpc`), the resource
reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, the sampler `OTEL_TRACES_SAMPLER`.

Off, every span below is the API's no-op span: the hot path pays a function call, no more.
The trace context crosses RocketMQ as the W3C `traceparent` (and `tracestate`) message
properties (`inject` on the way out, `extract` on the way in).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

log = logging.getLogger(__name__)

TRACER_NAME = "agentprod"

#: Attribute names used across the spans (messaging and GenAI semantic conventions, plus ours).
TASK_ID = "agentprod.task_id"

_provider_installed = False


def wanted(env: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces to be exported (pure; see the module doc)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    if "none" in exporters:
        return False
    if "otlp" in exporters:
        return True
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def protocol(env: Mapping[str, str]) -> str:
    """The OTLP transport the variables choose: `http/protobuf` (default) or `grpc`."""
    chosen = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if chosen not in ("http/protobuf", "grpc"):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={chosen!r}: agentprod exports http/protobuf or grpc"
        )
    return chosen


def configure(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the SDK's tracer provider with an OTLP exporter when `wanted`; True if on.

    `service_name` is the default of `OTEL_SERVICE_NAME` (agentprod-api, agentprod-worker,
    agentprod-operator). Safe to call twice (the second call does nothing).
    """
    global _provider_installed
    env = os.environ if env is None else env
    if _provider_installed or not wanted(env):
        return _provider_installed
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    transport = protocol(env)
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider_installed = True
    log.info(
        "tracing on: OTLP %s export as %s", transport, env.get("OTEL_SERVICE_NAME", service_name)
    )
    return True


def shutdown() -> None:
    """Flush and stop the exporter (at process exit); nothing when tracing is off."""
    provider = trace.get_tracer_provider()
    stop = getattr(provider, "shutdown", None)
    if _provider_installed and callable(stop):
        stop()


def enabled() -> bool:
    return _provider_installed


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def inject(properties: dict[str, str] | None = None) -> dict[str, str]:
    """The current trace context as message properties (`traceparent`, `tracestate`)."""
    carrier: dict[str, str] = dict(properties or {})
    if _provider_installed:
        propagate.inject(carrier)
    return carrier


def extract(properties: Mapping[str, str]) -> otel_context.Context:
    """The trace context a message carries (an empty context when it carries none)."""
    return propagate.extract(properties)


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span]:
    """A span around a block; an exception leaves it with status ERROR and is re-raised."""
    with tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes, record_exception=True
    ) as current:
        yield current


def failed(description: str) -> None:
    """Mark the current span failed without an exception (a task that ended `failed`)."""
    trace.get_current_span().set_status(Status(StatusCode.ERROR, description))


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span in hex, None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


#: Requests that get no server span: probes and scrapes, many a minute and no task's.
UNTRACED_URLS = "healthz,readyz,metrics"


def instrument_fastapi(app: object) -> None:
    """A server span per request (OpenTelemetry's FastAPI instrumentation); only when on."""
    if not _provider_installed:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS)  # type: ignore[arg-type]


def tag_task(task_id: str) -> None:
    """Name the task on the current span (the API's request span, the worker's process span)."""
    trace.get_current_span().set_attribute(TASK_ID, task_id)


@contextmanager
def producer_span(topic: str, task_id: str) -> Iterator[dict[str, str]]:
    """A PRODUCER span around one send; yields the trace context to add to the message's
    properties (empty when tracing is off)."""
    with span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rocketmq",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            TASK_ID: task_id,
        },
    ):
        yield inject()


@contextmanager
def consumer_span(
    properties: Mapping[str, str], *, message_id: str, attempt: int
) -> Iterator[Span]:
    """The CONSUMER span of one delivery, a child of the span that sent the message."""
    with span(
        "process task",
        kind=SpanKind.CONSUMER,
        parent=extract(properties),
        attributes={
            "messaging.system": "rocketmq",
            "messaging.operation.type": "process",
            "messaging.message.id": message_id,
            "messaging.rocketmq.delivery_attempt": attempt,
        },
    ) as current:
        yield current


@contextmanager
def model_call_span(model: str) -> Iterator[Span]:
    """The CLIENT span of one model call (GenAI semantic conventions: `chat {model}`)."""
    with span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model},
    ) as current:
        yield current


def record_model_call(
    current: Span,
    *,
    cached: bool,
    input_tokens: int | None,
    output_tokens: int | None,
    cost_usd: float | None,
) -> None:
    """What a model call cost, on its span."""
    if not current.is_recording():
        return
    current.set_attribute("agentprod.llm.cached", cached)
    if input_tokens is not None:
        current.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    if output_tokens is not None:
        current.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    if cost_usd is not None:
        current.set_attribute("agentprod.llm.cost_usd", cost_usd)


def describe_scaling(
    *, lag: int | None, in_flight: int | None, current: int, desired: int, reason: str
) -> None:
    """The autoscaler's reading and decision, on the current (scaling pass) span."""
    current_span = trace.get_current_span()
    if not current_span.is_recording():
        return
    if lag is not None:
        current_span.set_attribute("agentprod.lag", lag)
    if in_flight is not None:
        current_span.set_attribute("agentprod.in_flight", in_flight)
    current_span.set_attribute("agentprod.replicas.current", current)
    current_span.set_attribute("agentprod.replicas.desired", desired)
    current_span.set_attribute("agentprod.scaling.reason", reason)
