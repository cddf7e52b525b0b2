"""The whole task flow on the embedded mode of `agentprod dev` (memory broker + fakeredis).

Cases: a task reaches done with the tagger's result; Idempotency-Key replays and mismatches;
unknown agent and oversized content are refused with the field named; failed attempts are
retried and then settle as failed before the broker would dead-letter them; a duplicated
message for a finished task neither runs again nor publishes a second result.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from agentprod import store as stores
from agentprod.agents.registry import AgentPool
from agentprod.api import Services, create_app
from agentprod.broker.base import Outgoing
from agentprod.broker.memory import MemoryBroker
from agentprod.settings import load_settings
from agentprod.worker import Worker, WorkerOptions

MAX_RETRIES = 2


class Stack:
    def __init__(self) -> None:
        self.settings = load_settings(
            max_content_bytes=1000, mq_max_retries=MAX_RETRIES, api_auth="off"
        )
        self.broker = MemoryBroker(max_retries=MAX_RETRIES)
        self.store = stores.TaskStore(stores.embedded(), group="G")
        self.results = self.broker.consumer(
            group="downstream", topic="TopicResult", await_seconds=0
        )
        self.app = create_app(Services(self.settings, self.store, self.broker.publisher()))
        self.worker = Worker(
            consumer=self.broker.consumer(group="G", topic="TopicTest", await_seconds=0.2),
            publisher=self.broker.publisher(),
            store=self.store,
            agents=AgentPool(default="tagger", config={"seconds": 0.01}),
            options=WorkerOptions(
                result_topic="TopicResult",
                concurrency=4,
                invisible_seconds=2,
                max_attempts=MAX_RETRIES + 1,
                retry_backoff_seconds=0.05,
                shutdown_grace_seconds=2,
                result_ttl_seconds=60,
            ),
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://agentprod"
        )

    async def wait_finished(self, task_id: str, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                view: dict[str, Any] = (await self.client.get(f"/tasks/{task_id}")).json()
                if view["status"] in ("done", "failed"):
                    return view
                await asyncio.sleep(0.02)

    async def result_messages(self) -> list[dict[str, Any]]:
        got = await self.results.receive(max_messages=100, invisible_seconds=60)
        return [orjson.loads(d.body) for d in got]


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    built = Stack()
    await built.results.start()
    stop = asyncio.Event()
    running = asyncio.create_task(built.worker.run(stop))
    yield built
    stop.set()
    await running
    await built.client.aclose()


async def test_task_reaches_done_with_the_tagger_result(stack: Stack) -> None:
    answer = await stack.client.post("/tasks", json={"user_id": "u1", "content": "机械键盘降价了"})
    assert answer.status_code == 202
    assert answer.json()["status"] == "queued"
    view = await stack.wait_finished(answer.json()["task_id"])
    assert view["status"] == "done"
    assert view["result"] == {
        "labels": ["数码", "降价敏感"],
        "score": 95,
        "reason": "用户关注了内容: 机械键盘降价了",
    }
    assert view["attempts"] == 1
    (published,) = await stack.result_messages()
    assert published["task_id"] == view["task_id"]
    assert published["status"] == "done"
    assert published["user_id"] == "u1"


async def test_idempotency_key_returns_the_same_task(stack: Stack) -> None:
    body = {"user_id": "u1", "content": "hello", "agent": "echo"}
    headers = {"Idempotency-Key": "order-42"}
    first = await stack.client.post("/tasks", json=body, headers=headers)
    second = await stack.client.post("/tasks", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["task_id"] == second.json()["task_id"]
    other = await stack.client.post("/tasks", json=body | {"content": "else"}, headers=headers)
    assert other.status_code == 409
    assert other.json()["detail"][0] == {
        "field": "Idempotency-Key",
        "msg": "this Idempotency-Key was used with a different request body",
        "type": "idempotency_mismatch",
    }
    await stack.wait_finished(first.json()["task_id"])
    assert len(await stack.result_messages()) == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"user_id": "u", "content": "x", "agent": "nope"}, 422, "agent"),
        ({"user_id": "u", "content": "x" * 1001}, 413, "content"),
        ({"user_id": "u", "content": "x", "extra": 1}, 422, "extra"),
        # beyond 64 bits: JSON allows it, the store's encoder does not (it was a 500)
        ({"user_id": "u", "content": "x", "metadata": {"n": 2**70}}, 422, "metadata"),
        ({"user_id": "u", "content": "x", "metadata": {"d": [[[[[[[[1]]]]]]]]}}, 422, "metadata"),
        ({"user_id": "u", "content": "x", "metadata": {"s": "y" * 20000}}, 413, "metadata"),
        # the agent's declared parameters are checked at the API (they were retried 17 times)
        (
            {"user_id": "u", "content": "x", "agent": "sleep", "metadata": {"sleep_seconds": "a"}},
            422,
            "metadata.sleep_seconds",
        ),
        (
            {"user_id": "u", "content": "x", "agent": "sleep", "metadata": {"sleep_seconds": 1e9}},
            422,
            "metadata.sleep_seconds",
        ),
        ({"user_id": "u", "content": "x", "deadline_seconds": 10**6}, 422, "deadline_seconds"),
    ],
)
async def test_refusals_name_the_field(
    stack: Stack, body: dict[str, Any], status: int, field: str
) -> None:
    answer = await stack.client.post("/tasks", json=body)
    assert answer.status_code == status
    assert answer.json()["detail"][0]["field"] == field


async def test_failed_attempts_are_retried_then_succeed(stack: Stack) -> None:
    body = {"user_id": "u", "content": "x", "agent": "sleep", "metadata": {"fail_attempts": 2}}
    task_id = (await stack.client.post("/tasks", json=body)).json()["task_id"]
    view = await stack.wait_finished(task_id)
    assert (view["status"], view["attempts"]) == ("done", 3)
    assert view["error"] is None


async def test_exhausted_retries_fail_the_task_before_dead_lettering(stack: Stack) -> None:
    body = {"user_id": "u", "content": "x", "agent": "sleep", "metadata": {"fail_attempts": 99}}
    task_id = (await stack.client.post("/tasks", json=body)).json()["task_id"]
    view = await stack.wait_finished(task_id)
    assert view["status"] == "failed"
    assert view["attempts"] == MAX_RETRIES + 1
    assert "planned failure on attempt 3" in view["error"]
    assert stack.broker.dead_letters(group="G", topic="TopicTest") == []
    (published,) = await stack.result_messages()
    assert (published["status"], published["attempts"]) == ("failed", 3)


async def test_duplicate_message_of_a_finished_task_is_not_run_again(stack: Stack) -> None:
    task_id = (await stack.client.post("/tasks", json={"user_id": "u", "content": "x"})).json()[
        "task_id"
    ]
    first = await stack.wait_finished(task_id)
    record = await stack.store.get(task_id)
    assert record is not None
    stack.broker.publish(
        Outgoing(topic="TopicTest", body=record.message().encode(), key=task_id, tag="dup")
    )
    async with asyncio.timeout(5):
        while stack.broker.depth(group="G", topic="TopicTest"):
            await asyncio.sleep(0.02)
    assert await stack.wait_finished(task_id) == first  # same attempts, same timestamps
    assert len(await stack.result_messages()) == 1


async def test_a_task_past_its_deadline_fails_at_once(stack: Stack) -> None:
    """`deadline_seconds: 1` on a 5 s run: failed "deadline exceeded" after ~1 s, one attempt."""
    body = {
        "user_id": "u",
        "content": "x",
        "agent": "sleep",
        "metadata": {"sleep_seconds": 5},
        "deadline_seconds": 1,
    }
    started = asyncio.get_running_loop().time()
    task_id = (await stack.client.post("/tasks", json=body)).json()["task_id"]
    view = await stack.wait_finished(task_id)
    assert view["status"] == "failed"
    assert "deadline exceeded" in view["error"]
    assert view["attempts"] == 1
    assert asyncio.get_running_loop().time() - started < 3
