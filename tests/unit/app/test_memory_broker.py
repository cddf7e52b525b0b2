"""The embedded broker keeps RocketMQ's SimpleConsumer semantics (fake clock, no sleeping)."""

import pytest
from agentprod.broker.base import BrokerUnavailable, Outgoing
from agentprod.broker.memory import MemoryBroker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(n: int) -> Outgoing:
    return Outgoing(topic="T", body=f"m{n}".encode(), key=f"k{n}", tag="t")


async def receive(broker: MemoryBroker, group: str = "G", n: int = 10, invisible: float = 30):
    return await broker.receive(
        group=group, topic="T", max_messages=n, invisible_seconds=invisible, wait=0
    )


async def test_each_group_gets_every_message_and_members_share_it() -> None:
    broker = MemoryBroker(max_retries=3, clock=Clock())
    broker.consumer(group="A", topic="T", await_seconds=0)
    await broker.consumer(group="A", topic="T", await_seconds=0).start()
    await broker.consumer(group="B", topic="T", await_seconds=0).start()
    for n in range(3):
        broker.publish(message(n))
    first = await receive(broker, "A", n=2)
    second = await receive(broker, "A", n=2)
    assert [d.body for d in first + second] == [b"m0", b"m1", b"m2"]
    assert len(await receive(broker, "B")) == 3


async def test_unacked_message_comes_back_after_its_invisible_time() -> None:
    clock = Clock()
    broker = MemoryBroker(max_retries=3, clock=clock)
    broker.publish(message(1))
    (delivery,) = await receive(broker, invisible=30)
    assert delivery.attempt == 1
    clock.now += 29
    assert await receive(broker) == []
    clock.now += 1
    (again,) = await receive(broker)
    assert (again.body, again.attempt) == (b"m1", 2)
    with pytest.raises(BrokerUnavailable):
        await broker.consumer(group="G", topic="T", await_seconds=0).ack(delivery)  # stale
    await broker.consumer(group="G", topic="T", await_seconds=0).ack(again)
    clock.now += 100
    assert await receive(broker) == []


async def test_change_invisible_renews_and_replaces_the_handle() -> None:
    clock = Clock()
    broker = MemoryBroker(max_retries=3, clock=clock)
    consumer = broker.consumer(group="G", topic="T", await_seconds=0)
    broker.publish(message(1))
    (delivery,) = await receive(broker, invisible=10)
    old_handle = delivery.handle
    clock.now += 9
    await consumer.change_invisible(delivery, seconds=10)
    assert delivery.handle != old_handle
    clock.now += 9
    assert await receive(broker) == []
    await consumer.change_invisible(delivery, seconds=0)  # a nack: back at once
    (again,) = await receive(broker)
    assert again.attempt == 2


async def test_dead_letter_after_max_retries() -> None:
    clock = Clock()
    broker = MemoryBroker(max_retries=2, clock=clock)
    broker.publish(message(1))
    attempts = []
    for _ in range(5):
        got = await receive(broker, invisible=10)
        attempts += [d.attempt for d in got]
        clock.now += 10
    assert attempts == [1, 2, 3]
    assert broker.dead_letters(group="G", topic="T") == [b"m1"]
    assert broker.depth(group="G", topic="T") == 0


async def test_messages_before_any_group_wait_for_the_first_one() -> None:
    broker = MemoryBroker(max_retries=1, clock=Clock())
    broker.publish(message(1))
    assert [d.body for d in await receive(broker, "late")] == [b"m1"]
