"""The worker frees a task's slot once its outcome is stored: a result publish that hangs (a slow
broker) does not keep the next task from running, and the tails waiting to publish are bounded
(memory broker + fakeredis, one slot)."""

from __future__ import annotations

import asyncio

import orjson
from agentprod import store as stores
from agentprod.agents.registry import AgentPool
from agentprod.broker.base import Outgoing
from agentprod.broker.memory import MemoryBroker, MemoryPublisher
from agentprod.models import TaskRecord, TaskStatus
from agentprod.worker import Worker, WorkerOptions


class HeldPublisher(MemoryPublisher):
    """Holds every result publish until `open` is set."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker)
        self.open = asyncio.Event()
        self.waiting = 0

    async def send(self, message: Outgoing) -> str:
        self.waiting += 1
        await self.open.wait()
        return await super().send(message)


async def test_a_held_result_publish_does_not_hold_the_slot() -> None:
    broker = MemoryBroker(max_retries=2)
    store = stores.TaskStore(stores.embedded(), group="G")
    publisher = HeldPublisher(broker)
    worker = Worker(
        consumer=broker.consumer(group="G", topic="TopicTest", await_seconds=0.05),
        publisher=publisher,
        store=store,
        agents=AgentPool(default="echo", config={}),
        options=WorkerOptions(
            result_topic="TopicResult",
            concurrency=1,
            invisible_seconds=10,
            max_attempts=3,
            retry_backoff_seconds=0.05,
            shutdown_grace_seconds=5,
            result_ttl_seconds=60,
        ),
    )
    ids = ["t1", "t2", "t3"]
    for task_id in ids:
        await store.create(
            TaskRecord(
                task_id=task_id,
                user_id="u",
                content=task_id,
                status=TaskStatus.QUEUED,
                created_at=1.0,
                agent="echo",
            ),
            ttl_seconds=60,
        )
        await store.confirm_sent(task_id, ttl_seconds=60)
        body = {"task_id": task_id, "user_id": "u", "content": task_id, "agent": "echo"}
        broker.publish(
            Outgoing(topic="TopicTest", body=orjson.dumps(body), key=task_id, tag="task")
        )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(5):
            while publisher.waiting < 2:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        # One slot, the first publish held: the second task ran and stored `done` anyway; the
        # third waits, since at most `concurrency` deliveries may be publishing at once.
        statuses = []
        for task_id in ids:
            record = await store.get(task_id)
            assert record is not None
            assert not record.result_published
            statuses.append(record.status)
        assert statuses == [TaskStatus.DONE, TaskStatus.DONE, TaskStatus.QUEUED]
        assert publisher.waiting == 2
        assert broker.depth(group="G", topic="TopicTest") == 3  # none acked before its publish
        publisher.open.set()
        async with asyncio.timeout(5):
            while broker.depth(group="G", topic="TopicTest"):
                await asyncio.sleep(0.01)
        for task_id in ids:
            record = await store.get(task_id)
            assert record is not None
            assert record.result_published
    finally:
        publisher.open.set()
        stop.set()
        await running
