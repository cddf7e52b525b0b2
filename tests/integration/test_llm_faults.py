"""Provider failures through the real pipeline (`agentprod api` + `agentprod worker` on real
RocketMQ and Redis) against the tests' own fault-injecting model server (tests/integration/
llm_fakes.py) on 127.0.0.1.

Cases: 429 + Retry-After puts the task back for that long, then it succeeds (and the group's
provider signals count one throttled and one ok call); 503 likewise;
500s are retried and the task fails visibly after the group's retries; a slow model hits the
per-call timeout and fails visibly; a 400 fails at once without retries; a planner whose plan
stays invalid falls back to a direct answer; no model configured → 503 naming the variable.
Every task reaches a terminal state: nothing is lost. Progress on the task's event stream: a
streamed chat answer arrives as `tokens` events, the planner reports its plan and subtasks.
"""

from __future__ import annotations

import collections
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from agentprod import keys

from tests.integration.helpers import MAX_RETRIES, Launch, Names, record
from tests.integration.llm_fakes import FaultyModelServer


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FaultyModelServer]:
    server = FaultyModelServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def llm_env(fake_model: FaultyModelServer) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": fake_model.base_url,
        "OPENAI_API_KEY": "test",
        "LLM_MODEL_FAST": "fake-fast",
        "LLM_MODEL_STRONG": "fake-strong",
        "LLM_TIMEOUT_SECONDS": "1",
    }


@pytest.fixture
def api_url(launch: Launch, llm_env: dict[str, str]) -> Iterator[str]:
    worker = launch("worker", AGENT="chat", WORKER_CONCURRENCY="4", **llm_env)
    api = launch("api", **llm_env)
    yield api.url
    # Kept in the report of a failing test: what the processes said.
    print(f"--- api log ---\n{api.tail()}\n--- worker log ---\n{worker.tail()}")


def chat(url: str, query: str, *, path: str = "/chat", wait: float = 60) -> httpx.Response:
    return httpx.post(
        f"{url}{path}", json={"query": query, "wait_seconds": wait}, timeout=wait + 30
    )


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_delays_the_task_then_it_succeeds(
    api_url: str,
    fake_model: FaultyModelServer,
    redis_client: redis.Redis,
    names: Names,
    status: int,
) -> None:
    marker = f"[{status}x1:3] {uuid.uuid4().hex}"
    answer = chat(api_url, marker)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "done"
    assert body["answer"] == f"echo: {marker}"
    first, second = fake_model.calls(marker)
    assert 2.5 <= second - first < 15, second - first  # waited for Retry-After, not backoff
    stored = record(redis_client, body["task_id"])
    assert stored["attempts"] == "2"
    # the group's model-side signals, which the operator's scaler reads: 1 refused, 1 ok
    buckets = list(redis_client.scan_iter(match=keys.llm_signals(names.group, 0)[:-1] + "*"))
    totals = collections.Counter[str]()
    for key in buckets:
        for name, value in redis_client.hgetall(key).items():
            totals[name] += float(value)
    assert (totals["throttled"], totals["ok"], totals["limited"]) == (1, 1, 0)
    assert totals["call_ms"] > 0


def test_500s_retry_then_fail_visibly(api_url: str, fake_model: FaultyModelServer) -> None:
    marker = f"[500] {uuid.uuid4().hex}"
    answer = chat(api_url, marker)
    assert answer.status_code == 502, answer.text
    body = answer.json()
    assert body["status"] == "failed"
    assert "answered 500" in body["error"]
    assert len(fake_model.calls(marker)) == MAX_RETRIES + 1


def test_slow_model_times_out_visibly(api_url: str, fake_model: FaultyModelServer) -> None:
    marker = f"[slow:4] {uuid.uuid4().hex}"
    answer = chat(api_url, marker, wait=90)
    assert answer.status_code == 502, answer.text
    assert "timed out" in answer.json()["error"]
    assert len(fake_model.calls(marker)) == MAX_RETRIES + 1


def test_400_fails_at_once(api_url: str, fake_model: FaultyModelServer) -> None:
    marker = f"[400] {uuid.uuid4().hex}"
    answer = chat(api_url, marker)
    assert answer.status_code == 502, answer.text
    assert "context length exceeded" in answer.json()["error"]
    assert len(fake_model.calls(marker)) == 1


def test_invalid_plan_falls_back_clearly(
    launch: Launch, llm_env: dict[str, str], fake_model: FaultyModelServer
) -> None:
    launch("worker", AGENT="planner", **llm_env)
    api = launch("api", **llm_env)
    marker = f"[badplan] {uuid.uuid4().hex}"
    answer = chat(api.url, marker, path="/chat/multi-agent")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "done"
    assert body["plan"] is None
    assert body["fallback"] == "direct_answer"
    assert body["plan_attempts"] == 2
    assert body["plan_error"]
    assert body["answer"] == f"echo: {marker}"
    assert len(fake_model.calls(marker)) == 3  # plan, repaired plan, direct answer


def events_of(url: str, task_id: str) -> list[dict[str, Any]]:
    """The task's whole event history from GET /tasks/{id}/events (it has ended)."""
    answer = httpx.get(f"{url}/tasks/{task_id}/events", timeout=30)
    assert answer.status_code == 200, answer.text
    return [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]


def test_streamed_chat_answer_comes_as_tokens_events(api_url: str) -> None:
    words = " ".join(f"word{n}" for n in range(40))
    answer = httpx.post(
        f"{api_url}/chat",
        json={"query": f"{words} {uuid.uuid4().hex}", "stream": True, "wait_seconds": 60},
        timeout=90,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    events = events_of(api_url, body["task_id"])
    tokens = [event for event in events if event["type"] == "tokens"]
    assert len(tokens) >= 2  # streamed in pieces, not once at the end
    assert [event["index"] for event in tokens] == list(range(len(tokens)))
    assert "".join(event["text"] for event in tokens) == body["answer"]
    assert body["answer"].startswith("echo: word0 word1")
    assert body["usage"] == {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12}
    kinds = [event["type"] for event in events]
    assert kinds.index("tokens") > kinds.index("status")  # after `running`
    assert kinds[-2:] == ["status", "end"]


def test_planner_reports_its_plan_and_each_subtask(launch: Launch, llm_env: dict[str, str]) -> None:
    launch("worker", AGENT="planner", **llm_env)
    api = launch("api", **llm_env)
    answer = chat(api.url, f"what is 25 times 4? {uuid.uuid4().hex}", path="/chat/multi-agent")
    assert answer.status_code == 200, answer.text
    events = events_of(api.url, answer.json()["task_id"])
    progress = [event for event in events if event["type"] not in ("status", "end")]
    assert [(event["type"], event.get("id")) for event in progress] == [
        ("plan", None),
        ("subtask_started", 1),
        ("subtask_finished", 1),
    ]
    assert progress[0]["valid"] is True
    assert progress[0]["subtasks"][0]["tool"] == "calculate"
    assert progress[2]["ok"] is True
    assert [event.get("status") for event in events if event["type"] == "status"] == [
        "queued",
        "running",
        "done",
    ]


def test_no_model_configured_is_a_503_naming_the_variable(launch: Launch) -> None:
    api = launch("api", LLM_MODEL_FAST="", LLM_MODEL_STRONG="")  # whatever the shell has
    answer = httpx.post(f"{api.url}/chat", json={"query": "hi"}, timeout=30)
    assert answer.status_code == 503, answer.text
    assert "LLM_MODEL_FAST" in answer.text
    models = httpx.get(f"{api.url}/models", timeout=30).json()
    assert models["configured"] is False
    health = httpx.get(f"{api.url}/health", timeout=30).json()
    assert health["model"]["configured"] is False
