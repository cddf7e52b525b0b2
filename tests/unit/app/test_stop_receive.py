"""A worker stopped while its receive long-polls waits for that receive (up to
`receive_wait_seconds`) and hands back what it brings, so the message is visible at once for
the next worker — not hidden for its invisible time, which made the first task after a scale
to zero wait 30 s (memory broker + embedded Redis)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from agentprod import store as stores
from agentprod.agents.registry import AgentPool
from agentprod.broker.base import Delivery, Outgoing
from agentprod.broker.memory import MemoryBroker, MemoryConsumer
from agentprod.worker import Worker, WorkerOptions

LONG_POLL_SECONDS = 1.5
INVISIBLE_SECONDS = 30


class LongPoll(MemoryConsumer):
    """A receive that answers at the end of its long poll, as the RocketMQ proxy's does when
    nothing was there when it started; like the proxy, it pops what arrived even when the
    client gave up on the call (cancelling it here cancels only the waiting, not the pop)."""

    def __init__(self, broker: MemoryBroker) -> None:
        super().__init__(broker, group="G", topic="TopicTest", await_seconds=0.05)
        self.pops: set[asyncio.Future[list[Delivery]]] = set()  # kept: the proxy's side

    async def receive(self, *, max_messages: int, invisible_seconds: int) -> list[Delivery]:
        async def server_side() -> list[Delivery]:
            await asyncio.sleep(LONG_POLL_SECONDS)
            return await MemoryConsumer.receive(
                self, max_messages=max_messages, invisible_seconds=invisible_seconds
            )

        popping = asyncio.ensure_future(server_side())
        self.pops.add(popping)
        return await asyncio.shield(popping)


@pytest.mark.parametrize(("receive_wait", "visible_at_once"), [(3.0, True), (0.2, False)])
async def test_a_stop_during_a_long_poll_hands_its_message_back(
    receive_wait: float, visible_at_once: bool
) -> None:
    broker = MemoryBroker(max_retries=2)
    worker = Worker(
        consumer=LongPoll(broker),
        publisher=broker.publisher(),
        store=stores.TaskStore(stores.embedded(), group="G"),
        agents=AgentPool(default="echo", config={}),
        options=WorkerOptions(
            result_topic="TopicResult",
            concurrency=1,
            invisible_seconds=INVISIBLE_SECONDS,
            max_attempts=3,
            retry_backoff_seconds=0.05,
            shutdown_grace_seconds=5,
            result_ttl_seconds=60,
            receive_wait_seconds=receive_wait,
        ),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.3)  # the worker's receive is long-polling
    body = {"task_id": "t1", "user_id": "u", "content": "late", "agent": "echo"}
    broker.publish(Outgoing(topic="TopicTest", body=orjson.dumps(body), key="t1", tag="task"))
    stop.set()  # scaled away, idle: nothing to drain
    started = time.monotonic()
    async with asyncio.timeout(10):
        await running
    waited = time.monotonic() - started
    await asyncio.sleep(LONG_POLL_SECONDS)  # a receive cut short has popped it by now
    next_worker = broker.consumer(group="G", topic="TopicTest", await_seconds=0.05)
    found = await next_worker.receive(max_messages=1, invisible_seconds=INVISIBLE_SECONDS)
    assert bool(found) is visible_at_once, (found, waited)
    assert waited < receive_wait + 1.0  # never longer than the bounded wait
