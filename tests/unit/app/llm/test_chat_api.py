"""The chat routes on the embedded stack of `agentprod dev` (memory broker + fakeredis), with
the agents' model calls answered by a scripted openai transport (no network).

Cases: /chat waits for the answer, the repeat is a cache hit that /cache/stats and /stats count;
wait_seconds 0 answers 202 with the id to poll; a 429 + Retry-After is retried after that wait
and then answers; a failed task is a 502 naming the error; /chat/batch answers 202 with ids that
all finish and refuses over 100; /chat/multi-agent runs the plan; an unknown model is a 422;
no model configured is a 503 naming the variable; /models and /health.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from agentprod import store as stores
from agentprod.agents.chat import ChatAgent
from agentprod.agents.planner import PlannerAgent
from agentprod.agents.registry import AgentPool
from agentprod.api import Services, create_app
from agentprod.broker.memory import MemoryBroker
from agentprod.settings import load_settings
from agentprod.worker import Worker, WorkerOptions

from tests.unit.app.llm.test_agents import ENV, GOOD_PLAN, Scripted, agent_with, answer


def scripted_model(body: dict[str, Any]) -> httpx2.Response:
    prompt = body["messages"][-1]["content"]
    if body.get("tool_choice"):
        return answer(tool_args=GOOD_PLAN, model=body["model"])
    if "[400]" in prompt:
        return httpx2.Response(400, json={"error": {"message": "bad request"}})
    return answer(f"echo: {prompt}", model=body["model"])


class Stack:
    def __init__(self, handler: Any = scripted_model) -> None:
        self.settings = load_settings(mq_max_retries=2, api_auth="off")
        self.broker = MemoryBroker(max_retries=2)
        self.store = stores.TaskStore(stores.embedded(), group="G")
        self.script = Scripted(handler, redis_client=self.store.client)
        self.app = create_app(Services(self.settings, self.store, self.broker.publisher()))
        pool = AgentPool(default="chat", config={"redis_client": self.store.client})
        pool._agents["chat"] = agent_with(ChatAgent, self.script)
        pool._agents["planner"] = agent_with(PlannerAgent, self.script)
        self.worker = Worker(
            consumer=self.broker.consumer(group="G", topic="TopicTest", await_seconds=0.2),
            publisher=self.broker.publisher(),
            store=self.store,
            agents=pool,
            options=WorkerOptions(
                result_topic="TopicResult",
                concurrency=4,
                invisible_seconds=10,
                max_attempts=3,
                retry_backoff_seconds=0.05,
                shutdown_grace_seconds=2,
                result_ttl_seconds=60,
            ),
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://agentprod", timeout=30
        )


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def stack(environment: None) -> AsyncIterator[Stack]:
    built = Stack()
    stop = asyncio.Event()
    running = asyncio.create_task(built.worker.run(stop))
    yield built
    stop.set()
    await running
    await built.client.aclose()


async def test_chat_answers_and_repeats_from_the_cache(stack: Stack) -> None:
    first = await stack.client.post("/chat", json={"query": "hello", "user_id": "u1"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "done"
    assert body["answer"] == "echo: hello"
    assert body["cached"] is False
    again = (await stack.client.post("/chat", json={"query": "hello"})).json()
    assert again["cached"] is True
    assert len(stack.script.requests) == 1
    cache = (await stack.client.get("/cache/stats")).json()
    assert (cache["hits"], cache["misses"], cache["entries"]) == (1, 1, 1)
    assert cache["hit_rate"] == 0.5
    stats = (await stack.client.get("/stats")).json()
    assert stats["tasks"]["by_status"] == {"done": 2}
    assert stats["models"]["m-fast"]["calls"] == 1
    assert stats["models"]["m-fast"]["cache_hits"] == 1
    assert stats["totals"]["total_tokens"] == 15
    view = (await stack.client.get(f"/tasks/{body['task_id']}")).json()
    assert view["result"]["usage"]["total_tokens"] == 15


async def test_no_wait_answers_202_with_the_id(stack: Stack) -> None:
    answer_ = await stack.client.post("/chat", json={"query": "later", "wait_seconds": 0})
    assert answer_.status_code == 202
    body = answer_.json()
    assert body["poll"] == f"/tasks/{body['task_id']}"


async def test_retry_after_then_success() -> None:
    calls: list[float] = []

    def limited(body: dict[str, Any]) -> httpx2.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx2.Response(429, headers={"retry-after": "1"}, json={"error": "slow"})
        return scripted_model(body)

    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENV.items():
            patch.setenv(name, value)
        built = Stack(limited)
        stop = asyncio.Event()
        running = asyncio.create_task(built.worker.run(stop))
        try:
            reply = await built.client.post("/chat", json={"query": "hi"})
        finally:
            stop.set()
            await running
            await built.client.aclose()
    assert reply.status_code == 200, reply.text
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.9


async def test_failed_task_is_a_502(stack: Stack) -> None:
    reply = await stack.client.post("/chat", json={"query": "[400]"})
    assert reply.status_code == 502
    assert reply.json()["status"] == "failed"
    assert "bad request" in reply.json()["error"]


async def test_batch(stack: Stack) -> None:
    reply = await stack.client.post("/chat/batch", json={"queries": ["a", "b", "c"]})
    assert reply.status_code == 202
    ids = reply.json()["task_ids"]
    assert len(set(ids)) == 3
    async with asyncio.timeout(10):
        while True:
            views = [(await stack.client.get(f"/tasks/{i}")).json() for i in ids]
            if all(v["status"] == "done" for v in views):
                break
            await asyncio.sleep(0.05)
    too_many = await stack.client.post("/chat/batch", json={"queries": ["q"] * 101})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["field"] == "queries"


async def test_multi_agent(stack: Stack) -> None:
    reply = await stack.client.post("/chat/multi-agent", json={"query": "25*4?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["plan_valid"] is True
    assert body["results"][0]["output"]["value"] == 100


async def test_unknown_model_models_and_health(stack: Stack) -> None:
    reply = await stack.client.post("/chat", json={"query": "hi", "model": "gemini-1.5-pro"})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["field"] == "model"
    models = (await stack.client.get("/models")).json()
    assert models["tiers"] == {"fast": "m-fast", "strong": "m-strong"}
    assert models["models"][0]["price_per_mtok"] == {"input": 1.0, "output": 2.0}
    assert "sk-unit-secret" not in str(models)  # never the key
    health = await stack.client.get("/health")
    assert health.status_code == 200
    assert health.json()["model"]["configured"] is True


async def test_no_model_configured_is_a_503() -> None:
    stack = Stack()  # no LLM variables in the environment
    reply = await stack.client.post("/chat", json={"query": "hi"})
    await stack.client.aclose()
    assert reply.status_code == 503
    assert "LLM_MODEL_FAST" in reply.text
    assert reply.headers["Retry-After"]
