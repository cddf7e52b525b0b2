"""Tracing's switch (the OTEL_* variables) and the JSON log line, without servers."""

from __future__ import annotations

import json
import logging

import pytest
from agentprod import logs, tracing
from opentelemetry.sdk.trace import TracerProvider


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_tracing_is_off_unless_the_variables_ask(env: dict[str, str], on: bool) -> None:
    assert tracing.wanted(env) is on


def test_protocol_defaults_to_http_and_refuses_what_it_cannot_export() -> None:
    assert tracing.protocol({}) == "http/protobuf"
    assert tracing.protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == "grpc"
    assert tracing.protocol({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}) == "grpc"
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"):
        tracing.protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_off_the_properties_carry_no_traceparent() -> None:
    assert tracing.inject({"result_id": "r"}) == {"result_id": "r"}
    with tracing.span("nothing recorded"):
        assert tracing.current_ids() is None


def _record(message: str, *, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            info = sys.exc_info()
    return logging.LogRecord("agentprod.x", logging.WARNING, __file__, 1, message, (), info)


def test_json_line_carries_task_id_and_trace_id() -> None:
    formatter = logs.JsonFormatter(service="agentprod-worker")
    tracer = TracerProvider().get_tracer("test")  # a recording tracer, not the global one
    with logs.task_scope("t-1"), tracer.start_as_current_span("s") as span:
        line = json.loads(formatter.format(_record("hello world")))
    context = span.get_span_context()
    assert line["msg"] == "hello world"
    assert line["level"] == "WARNING"
    assert line["service"] == "agentprod-worker"
    assert line["task_id"] == "t-1"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert line["ts"].endswith("Z")


def test_json_line_outside_a_task_has_no_empty_keys_and_keeps_the_traceback() -> None:
    line = json.loads(logs.JsonFormatter(service="s").format(_record("x", exc=True)))
    assert "task_id" not in line
    assert "trace_id" not in line
    assert "RuntimeError: boom" in line["exc"]


def test_unknown_log_format_names_the_variable() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT='xml'"):
        logs.configure(service="s", fmt="xml")
