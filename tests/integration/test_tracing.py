"""One task → one trace, across real processes and a real OpenTelemetry Collector.

The API and the worker export OTLP (http/protobuf) to the collector built by the harness; the
trace context crosses RocketMQ in the message's `traceparent` property. The chat agent calls
the test's OpenAI-compatible server, so the trace holds a model-call span too. The JSON log
lines of both processes carry the task's id and the same trace id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from harness.otelcol import Collector, Span, ensure_otelcol

from tests.integration.helpers import Launch, wait_for_status
from tests.integration.llm_fakes import FaultyModelServer


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    server = Collector(home=tmp_path / "otelcol", binary=ensure_otelcol())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_model() -> Iterator[FaultyModelServer]:
    server = FaultyModelServer()
    server.start()
    yield server
    server.stop()


def _trace(collector: Collector, task_id: str, *, wanted: set[str], timeout: float) -> list[Span]:
    """The spans of the trace whose API request span names `task_id`, once `wanted` are in."""
    deadline = time.monotonic() + timeout
    spans: list[Span] = []
    while time.monotonic() < deadline:
        spans = collector.spans()
        roots = [s for s in spans if s.attributes.get("agentprod.task_id") == task_id]
        if roots:
            trace_id = roots[0].trace_id
            spans = [s for s in spans if s.trace_id == trace_id]
            if wanted <= {s.name for s in spans}:
                return spans
        time.sleep(0.3)
    raise AssertionError(f"trace incomplete after {timeout}s: {sorted(s.name for s in spans)}")


def _chain(spans: list[Span], leaf: Span) -> list[str]:
    """The names from `leaf` up to the root, following parent links."""
    by_id = {s.span_id: s for s in spans}
    names = [leaf.name]
    current = leaf
    while current.parent_span_id:
        current = by_id[current.parent_span_id]  # a missing parent is a broken link
        names.append(current.name)
    return names


def test_one_task_is_one_trace_from_api_to_model(
    launch: Launch,
    collector: Collector,
    fake_model: FaultyModelServer,
    redis_client: redis.Redis,
) -> None:
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.http_endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 0.2 s, not 5 s
        "LOG_FORMAT": "json",
    }
    llm = {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "test",
        "LLM_MODEL_FAST": "fake-fast",
        "LLM_MODEL_STRONG": "fake-strong",
    }
    worker = launch("worker", AGENT="chat", **otel, **llm)
    api = launch("api", **otel, **llm)

    answer = httpx.post(
        f"{api.url}/tasks",
        json={"user_id": "u-trace", "content": "hello trace", "agent": "chat"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    assert wait_for_status(redis_client, [task_id], {"done"}, timeout=60) == ["done"]

    wanted = {"POST /tasks", "process task", "claim", "store result", "agent chat"}
    spans = _trace(collector, task_id, wanted=wanted, timeout=30)
    names = {s.name for s in spans}
    model_calls = [s for s in spans if s.name.startswith("chat ")]
    assert model_calls, sorted(names)

    # Parent links intact from the model call back to the API's request span, across RocketMQ.
    chain = _chain(spans, model_calls[0])
    assert chain[-1] == "POST /tasks", chain
    assert "process task" in chain, chain
    assert "agent chat" in chain, chain
    assert any(name.startswith("send ") for name in chain), chain
    by_name = {s.name: s for s in spans}
    assert by_name["POST /tasks"].service == "agentprod-api"
    assert by_name["process task"].service == "agentprod-worker"
    assert by_name["process task"].kind == "5"  # SPAN_KIND_CONSUMER
    assert model_calls[0].attributes["gen_ai.request.model"].startswith("fake-")
    assert model_calls[0].attributes["gen_ai.usage.input_tokens"] > 0
    # The result goes out in the same trace (downstream consumers can continue it).
    assert any(s.name.startswith("send ") and s.service == "agentprod-worker" for s in spans), (
        sorted(names)
    )

    # Logs: JSON lines; the worker's lines about this task carry its id and the trace id.
    trace_id = by_name["process task"].trace_id
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line]
    mine = [line for line in lines if line.get("task_id") == task_id]
    assert lines
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert all(line["service"] == "agentprod-worker" for line in lines)
    if mine:  # a clean run logs little per task; what it logs is correlated
        assert all(line.get("trace_id") == trace_id for line in mine), mine
