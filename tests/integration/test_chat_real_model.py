"""The agent layer against the real local model server: llama.cpp (llama-cpp-python, built
once and cached) with SmolLM2-135M, behind the real pipeline (RocketMQ, Redis, `agentprod api`
and `agentprod worker` processes).

The model is tiny, so these tests assert protocol properties, not answer quality:
- `/chat` returns generated text with usage > 0; the same request again is a cache hit served
  without a model call (the ledger's call count for the model does not grow);
  `/models`, `/stats` and `/cache/stats` reflect that;
- `/chat/batch` of 20 completes;
- `/chat/multi-agent` returns a schema-valid plan whose subtasks name offered tools, one
  executor result per subtask, and a final answer.
Figures (direct call vs through the pipeline, cache-hit latency) are printed (`pytest -s`).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis
from harness import llm, paths
from harness.apps import free_port

from tests.integration.helpers import Launch, wait_for_status

MODEL = llm.MODEL_ALIAS
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[llm.LlamaServer]:
    llm.ensure_server_installed(paths.cache_dir())
    server = llm.LlamaServer(
        home=tmp_path_factory.mktemp("llama"),
        model=llm.ensure_model(paths.cache_dir()),
        port=free_port(),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def llm_env(model_server: llm.LlamaServer) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "local",
        "LLM_MODEL_FAST": MODEL,
        "LLM_MODEL_STRONG": MODEL,
        "LLM_MAX_TOKENS": str(MAX_TOKENS),
        "LLM_TIMEOUT_SECONDS": "240",
        "LLM_PRICES": f'{{"{MODEL}": {{"input": 0.1, "output": 0.4}}}}',
        "WORKER_INVISIBLE_SECONDS": "60",
    }


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def test_chat_answer_then_cache_hit(
    launch: Launch, llm_env: dict[str, str], model_server: llm.LlamaServer, tmp_path: Path
) -> None:
    launch("worker", AGENT="chat", WORKER_CONCURRENCY="2", **llm_env)
    api = launch("api", **llm_env)
    query = f"Say hello to user {uuid.uuid4().hex[:6]}."
    direct = openai.OpenAI(base_url=model_server.base_url, api_key="local", max_retries=0)
    started = time.perf_counter()
    reply = direct.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": query}],
        temperature=0,
        max_tokens=MAX_TOKENS,
    )
    direct_s = time.perf_counter() - started
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0

    with httpx.Client(base_url=api.url, timeout=300) as client:
        before = client.get("/stats").json()
        started = time.perf_counter()
        first = client.post("/chat", json={"query": query, "wait_seconds": 120})
        pipeline_s = time.perf_counter() - started
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["status"] == "done"
        assert isinstance(body["answer"], str)
        assert body["answer"]
        assert body["usage"]["completion_tokens"] > 0
        assert body["usage"]["prompt_tokens"] > 0
        assert body["model_used"] == MODEL
        assert body["route"] == "simple request"
        assert body["cached"] is False
        assert body["cost"] > 0
        assert body["latency_ms"] > 0

        hits = []
        for _ in range(20):
            started = time.perf_counter()
            again = client.post("/chat", json={"query": query, "wait_seconds": 60})
            hits.append(time.perf_counter() - started)
            assert again.status_code == 200, again.text
            assert again.json()["cached"] is True
            assert again.json()["answer"] == body["answer"]
        after = client.get("/stats").json()
        calls_before = before["models"].get(MODEL, {}).get("calls", 0)
        assert after["models"][MODEL]["calls"] == calls_before + 1  # the hits made no call
        assert after["models"][MODEL]["cache_hits"] >= 20
        assert after["models"][MODEL]["total_tokens"] > 0
        assert after["tasks"]["by_status"]["done"] >= 21
        cache = client.get("/cache/stats").json()
        assert cache["hits"] >= 20
        assert 0 < cache["hit_rate"] <= 1
        models = client.get("/models").json()
        assert models["tiers"] == {"fast": MODEL, "strong": MODEL}
        assert client.get("/health").status_code == 200
    hits.sort()
    print(
        f"\nchat figures: direct model call {ms(direct_s)} ms; through the pipeline "
        f"{ms(pipeline_s)} ms (model {body['model_latency_ms']} ms inside the worker); cache "
        f"hit p50 {ms(statistics.median(hits))} ms, p99 {ms(hits[-1])} ms over {len(hits)}; "
        f"{reply.usage.completion_tokens} tokens in {ms(direct_s)} ms directly"
    )


def test_batch_of_20_completes(
    launch: Launch, llm_env: dict[str, str], redis_client: redis.Redis
) -> None:
    launch("worker", AGENT="chat", WORKER_CONCURRENCY="4", **llm_env)
    api = launch("api", **llm_env)
    tag = uuid.uuid4().hex[:6]
    queries = [f"Name a colour ({tag}-{i})." for i in range(20)]
    answer = httpx.post(
        f"{api.url}/chat/batch", json={"queries": queries, "max_tokens": 8}, timeout=60
    )
    assert answer.status_code == 202, answer.text
    ids = answer.json()["task_ids"]
    assert len(set(ids)) == 20
    final = wait_for_status(redis_client, ids, {"done", "failed"}, timeout=900)
    assert final.count("done") == 20, final
    for task_id in ids[:3]:
        view = httpx.get(f"{api.url}/tasks/{task_id}", timeout=30).json()
        assert view["result"]["usage"]["completion_tokens"] > 0


def test_multi_agent_plan_executes_and_answers(launch: Launch, llm_env: dict[str, str]) -> None:
    launch("worker", AGENT="planner", **llm_env)
    api = launch("api", **llm_env)
    with httpx.Client(base_url=api.url, timeout=300) as client:
        answer = client.post(
            "/chat/multi-agent",
            json={"query": "Calculate 25*4, then tell me today's date.", "wait_seconds": 120},
        )
        assert answer.status_code in (200, 202), answer.text
        body = answer.json()
        deadline = time.monotonic() + 600
        while body.get("status") not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(1)
            view = client.get(f"/tasks/{body['task_id']}").json()
            body = {"status": view["status"], **(view.get("result") or {})}
    assert body["status"] == "done", body
    assert body["plan_valid"] is True, body  # llama.cpp constrains the tool call to the schema
    subtasks = body["plan"]["subtasks"]
    assert 1 <= len(subtasks) <= 6
    assert {s["tool"] for s in subtasks} <= set(body["tools_offered"])
    assert len(body["results"]) == len(subtasks)
    assert all(isinstance(r["ok"], bool) for r in body["results"])
    assert isinstance(body["answer"], str)
    assert body["usage"]["total_tokens"] > 0
    assert [c["step"] for c in body["calls"]][-1] == "answer"
