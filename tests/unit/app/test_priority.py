"""Task priorities: the topic naming, the settings that name it, the worker's room rules, and
high-priority tasks overtaking a normal backlog on the embedded stack (memory broker +
fakeredis, as `agentprod dev` runs it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from agentprod import decisions
from agentprod import store as stores
from agentprod.agents.registry import AgentPool
from agentprod.api import Services, create_app
from agentprod.broker.memory import MemoryBroker
from agentprod.models import Priority, TaskRecord, TaskStatus, priority_topic
from agentprod.settings import ConfigurationError, load_settings
from agentprod.worker import Worker, WorkerOptions


def test_the_high_topic_is_the_request_topic_with_a_suffix() -> None:
    assert priority_topic("TopicTest") == "TopicTest-high"
    settings = load_settings(mq_topic_request="Req")
    assert settings.request_topic(Priority.NORMAL) == "Req"
    assert settings.request_topic(Priority.HIGH) == "Req-high"
    named = load_settings(mq_topic_request="Req", mq_topic_request_high="Urgent")
    assert named.request_topic(Priority.HIGH) == "Urgent"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"mq_topic_request": "R" * 125}, "MQ_TOPIC_REQUEST_HIGH"),
        ({"mq_topic_request": "R", "mq_topic_request_high": "R"}, "MQ_TOPIC_REQUEST_HIGH"),
        ({"mq_topic_result": "R-high", "mq_topic_request": "R"}, "MQ_TOPIC_REQUEST_HIGH"),
        ({"mq_topic_request_high": "bad name"}, "MQ_TOPIC_REQUEST_HIGH"),
        ({"worker_priority_slots": 0}, "WORKER_PRIORITY_SLOTS"),
    ],
)
def test_bad_priority_settings_name_the_variable(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        load_settings(**overrides)


@pytest.mark.parametrize(
    ("concurrency", "reserve", "holding", "running", "normal", "high"),
    [
        (1, 1, 0, 0, 1, 1),  # idle: a normal task fills the slot, a high one the reserve
        (1, 1, 1, 1, 0, 1),  # full of normal work: only a high task starts (the reserve)
        (1, 1, 2, 2, 0, 0),  # the reserve taken too: nothing
        (8, 1, 8, 8, 0, 1),
        (8, 2, 3, 3, 5, 2),  # high asks at most the reserve per receive
        (8, 4, 10, 10, 0, 2),
        (4, 1, 0, 8, 0, 1),  # 4 tails still settling: normal waits, high has its own tail
        (4, 1, 6, 6, 0, 0),  # past the bound: nothing, never negative
    ],
)
def test_room_per_lane(
    concurrency: int, reserve: int, holding: int, running: int, normal: int, high: int
) -> None:
    assert (
        decisions.normal_room(concurrency=concurrency, holding=holding, running=running) == normal
    )
    assert (
        decisions.priority_room(
            concurrency=concurrency, reserve=reserve, holding=holding, running=running
        )
        == high
    )


def test_a_pending_normal_receive_holds_back_what_it_may_bring() -> None:
    # Idle, 4 slots + 1 reserve: a normal long-poll asking for 1 leaves the reserve to high.
    assert decisions.priority_room(concurrency=4, reserve=1, holding=0, running=0, asked_normal=1)
    # 3 running, the normal receive may bring 1 more: the 5th slot stays for high work.
    room = decisions.priority_room(concurrency=4, reserve=1, holding=3, running=3, asked_normal=1)
    assert room == 1
    # Full: 4 running and a normal receive for the last slot would overrun the reserve.
    room = decisions.priority_room(concurrency=4, reserve=1, holding=4, running=4, asked_normal=1)
    assert room == 0


def test_a_record_keeps_its_priority_through_the_store_encoding() -> None:
    record = TaskRecord(
        task_id="t",
        user_id="u",
        content="c",
        status=TaskStatus.QUEUED,
        created_at=1.0,
        priority=Priority.HIGH,
    )
    decoded = stores._decode(stores._encode(record))
    assert decoded.priority is Priority.HIGH
    assert decoded.view().priority is Priority.HIGH
    assert decoded.message().priority is Priority.HIGH
    old = stores._encode(record)
    del old["priority"]  # a record written before priorities
    assert stores._decode(old).priority is Priority.NORMAL


class Stack:
    def __init__(self, *, concurrency: int) -> None:
        self.settings = load_settings(api_auth="off", test_agents=True)
        self.broker = MemoryBroker(max_retries=2)
        self.store = stores.TaskStore(stores.embedded(), group="G")
        self.app = create_app(Services(self.settings, self.store, self.broker.publisher()))
        self.worker = Worker(
            consumer=self.broker.consumer(group="G", topic="TopicTest", await_seconds=0.2),
            priority_consumer=self.broker.consumer(
                group="G", topic="TopicTest-high", await_seconds=0.2
            ),
            publisher=self.broker.publisher(),
            store=self.store,
            agents=AgentPool(default="sleep", config={"seconds": 0.1}, test_agents=True),
            options=WorkerOptions(
                result_topic="TopicResult",
                concurrency=concurrency,
                invisible_seconds=10,
                max_attempts=3,
                retry_backoff_seconds=0.05,
                shutdown_grace_seconds=2,
                result_ttl_seconds=60,
            ),
        )
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://agentprod"
        )

    async def submit(self, n: int, **extra: Any) -> str:
        body = {"user_id": "u", "content": f"task {n}", "agent": "sleep"} | extra
        answer = await self.client.post("/tasks", json=body)
        assert answer.status_code == 202, answer.text
        task_id: str = answer.json()["task_id"]
        return task_id

    async def view(self, task_id: str) -> dict[str, Any]:
        got: dict[str, Any] = (await self.client.get(f"/tasks/{task_id}")).json()
        return got


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    built = Stack(concurrency=1)
    stop = asyncio.Event()
    running = asyncio.create_task(built.worker.run(stop))
    yield built
    stop.set()
    await running
    await built.client.aclose()


def _at(view: dict[str, Any], field: str) -> float:
    return datetime.fromisoformat(view[field]).timestamp()


async def test_high_priority_tasks_overtake_a_normal_backlog(stack: Stack) -> None:
    normal = [await stack.submit(n) for n in range(12)]
    async with asyncio.timeout(10):
        while (await stack.view(normal[0]))["status"] not in ("running", "done"):
            await asyncio.sleep(0.01)
    high = [await stack.submit(100 + n, priority="high") for n in range(3)]
    async with asyncio.timeout(20):
        while (await stack.view(normal[-1]))["status"] != "done":
            await asyncio.sleep(0.05)
    views = {task_id: await stack.view(task_id) for task_id in normal + high}
    assert all(views[task_id]["priority"] == "high" for task_id in high)
    assert all(views[task_id]["priority"] == "normal" for task_id in normal)
    last_high_done = max(_at(views[t], "finished_at") for t in high)
    normal_started = sorted(_at(views[t], "started_at") for t in normal)
    # Every high task ended before the later half of the backlog began.
    assert last_high_done <= normal_started[len(normal) // 2]


async def test_an_unknown_priority_is_refused_naming_the_field(stack: Stack) -> None:
    answer = await stack.client.post(
        "/tasks", json={"user_id": "u", "content": "x", "priority": "urgent"}
    )
    assert answer.status_code == 422
    assert "priority" in answer.text
