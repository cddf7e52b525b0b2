"""The embedded broker of `agentprod dev`: RocketMQ SimpleConsumer semantics in memory.

Each consumer group gets every message of the topics it consumes (publish/subscribe between
groups, load balancing inside one). A received message is invisible for the requested time and
comes back with its attempt count raised unless acked; `change_invisible` renews or shortens that
time and, as in RocketMQ, replaces the receipt handle. A message due for delivery number
`max_retries + 2` goes to the group's dead-letter list instead, like RocketMQ's `%DLQ%{group}`.
Messages published while no group consumes a topic wait in a bounded backlog for the first one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import time
import uuid
from collections.abc import Callable

from agentprod import tracing
from agentprod.broker.base import BrokerUnavailable, Delivery, Outgoing, with_context

BACKLOG_LIMIT = 100_000


@dataclasses.dataclass
class _Entry:
    message_id: str
    body: bytes
    key: str
    deliveries: int = 0
    properties: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Group:
    ready: collections.deque[_Entry] = dataclasses.field(default_factory=collections.deque)
    invisible: dict[str, tuple[_Entry, float]] = dataclasses.field(default_factory=dict)
    dead: list[_Entry] = dataclasses.field(default_factory=list)
    wakeup: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class MemoryBroker:
    """One process-wide broker handing out publishers and consumers."""

    def __init__(self, *, max_retries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_attempts = max_retries + 1
        self._clock = clock
        self._groups: dict[str, dict[str, _Group]] = collections.defaultdict(dict)
        self._backlog: dict[str, collections.deque[_Entry]] = collections.defaultdict(
            lambda: collections.deque(maxlen=BACKLOG_LIMIT)
        )
        self._ids = itertools.count(1)

    def publisher(self) -> MemoryPublisher:
        return MemoryPublisher(self)

    def consumer(self, *, group: str, topic: str, await_seconds: float) -> MemoryConsumer:
        return MemoryConsumer(self, group=group, topic=topic, await_seconds=await_seconds)

    def dead_letters(self, *, group: str, topic: str) -> list[bytes]:
        """Bodies that exhausted their deliveries (the `%DLQ%` view, for tests and debugging)."""
        return [entry.body for entry in self._group(group, topic).dead]

    def depth(self, *, group: str, topic: str) -> int:
        """Messages waiting or invisible for a group (its lag, in RocketMQ terms)."""
        state = self._group(group, topic)
        return len(state.ready) + len(state.invisible)

    def publish(self, message: Outgoing) -> str:
        message_id = f"{next(self._ids):016X}"
        groups = self._groups[message.topic]
        if not groups:
            self._backlog[message.topic].append(
                _Entry(message_id, message.body, message.key, properties=dict(message.properties))
            )
        for state in groups.values():
            state.ready.append(
                _Entry(message_id, message.body, message.key, properties=dict(message.properties))
            )
            state.wakeup.set()
        return message_id

    def _group(self, group: str, topic: str) -> _Group:
        groups = self._groups[topic]
        if group not in groups:
            state = _Group()
            state.ready.extend(self._backlog.pop(topic, ()))
            groups[group] = state
        return groups[group]

    async def receive(
        self, *, group: str, topic: str, max_messages: int, invisible_seconds: float, wait: float
    ) -> list[Delivery]:
        state = self._group(group, topic)
        deadline = self._clock() + wait
        while True:
            self._revive(state)
            taken = self._take(state, max_messages, invisible_seconds)
            if taken:
                return taken
            now = self._clock()
            if now >= deadline:
                return []
            next_due = min((due for _, due in state.invisible.values()), default=deadline)
            state.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wakeup.wait(), max(0.0, min(deadline, next_due) - now))

    def _revive(self, state: _Group) -> None:
        now = self._clock()
        expired = [handle for handle, (_, due) in state.invisible.items() if due <= now]
        for handle in expired:
            entry, _ = state.invisible.pop(handle)
            state.ready.append(entry)

    def _take(self, state: _Group, limit: int, invisible_seconds: float) -> list[Delivery]:
        taken: list[Delivery] = []
        while state.ready and len(taken) < limit:
            entry = state.ready.popleft()
            if entry.deliveries >= self._max_attempts:
                state.dead.append(entry)
                continue
            entry.deliveries += 1
            handle = uuid.uuid4().hex
            state.invisible[handle] = (entry, self._clock() + invisible_seconds)
            taken.append(
                Delivery(
                    body=entry.body,
                    message_id=entry.message_id,
                    attempt=entry.deliveries,
                    key=entry.key,
                    handle=handle,
                    properties=entry.properties,
                )
            )
        return taken

    def ack(self, *, group: str, topic: str, delivery: Delivery) -> None:
        state = self._group(group, topic)
        if state.invisible.pop(str(delivery.handle), None) is None:
            raise BrokerUnavailable(f"receipt handle of {delivery.message_id} expired")

    def change_invisible(
        self, *, group: str, topic: str, delivery: Delivery, seconds: float
    ) -> None:
        state = self._group(group, topic)
        held = state.invisible.pop(str(delivery.handle), None)
        if held is None:
            raise BrokerUnavailable(f"receipt handle of {delivery.message_id} expired")
        delivery.handle = uuid.uuid4().hex
        state.invisible[delivery.handle] = (held[0], self._clock() + seconds)
        state.wakeup.set()


class MemoryPublisher:
    send_budget_seconds = 1.0  # in-process: a send never waits

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    async def start(self) -> None:
        return None

    async def send(self, message: Outgoing) -> str:
        with tracing.producer_span(message.topic, message.key) as context:
            return self._broker.publish(with_context(message, context))

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryConsumer:
    def __init__(self, broker: MemoryBroker, *, group: str, topic: str, await_seconds: float):
        self._broker = broker
        self._group = group
        self._topic = topic
        self._await_seconds = await_seconds

    async def start(self) -> None:
        self._broker.depth(group=self._group, topic=self._topic)  # subscribes the group

    async def receive(self, *, max_messages: int, invisible_seconds: int) -> list[Delivery]:
        return await self._broker.receive(
            group=self._group,
            topic=self._topic,
            max_messages=max_messages,
            invisible_seconds=invisible_seconds,
            wait=self._await_seconds,
        )

    async def ack(self, delivery: Delivery) -> None:
        self._broker.ack(group=self._group, topic=self._topic, delivery=delivery)

    async def change_invisible(self, delivery: Delivery, *, seconds: float) -> None:
        self._broker.change_invisible(
            group=self._group, topic=self._topic, delivery=delivery, seconds=seconds
        )

    async def close(self) -> None:
        return None
