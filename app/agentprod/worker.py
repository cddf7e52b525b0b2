"""The worker's loop: receive task messages in batches and hand each to `handling.Handler`.

One loop per process receives in batches of at most the free concurrency slots; each delivery
is handled in its own asyncio task (claim → run → store → publish → ack, see `handling`). A
delivery frees its slot once its outcome is stored: the result's publish and the ack finish
without holding it (at most `concurrency` such tails at once).

Priorities: with a `priority_consumer` (the `<request topic>-high` topic of `priority: high`
tasks) a second loop keeps a receive pending on that topic whenever a slot is free, and the
worker keeps `priority_slots` extra slots only high-priority tasks take. A high task therefore
starts even while every slot runs a normal one, and a freed slot goes to high tasks first:
the normal loop receives only into slots below `concurrency` (`decisions.normal_room`), the
high one asks for at most `priority_slots` messages at a time, less what a pending normal
receive may bring (`decisions.priority_room`), so what both land always fits in
`concurrency + priority_slots` slots. An idle normal loop (its last receive brought nothing)
asks for one message, so a pending normal long-poll holds back no more than one slot from
high-priority work.

On stop (SIGTERM) it stops receiving, gives in-flight tasks `shutdown_grace_seconds` to finish,
then hands unfinished ones back to the broker (released claim, zero invisibility).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from agentprod import decisions, handling, metrics
from agentprod.agents.registry import AgentPool
from agentprod.broker.base import BrokerUnavailable, Consumer, Delivery, Publisher
from agentprod.store import StoreUnavailable, TaskStore
from agentprod.webhooks import CallbackSender

log = logging.getLogger(__name__)

MAX_BATCH = 32
# With only a few slots free while tasks run and messages waiting, wait this long for more to
# free up: one fuller receive costs the broker proxy far less than a receive per freed slot.
# No wait when the last receive was not full (`decisions.linger_before_receive`).
RECEIVE_LINGER_SECONDS = 0.01
RECEIVE_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)
STORE_PING_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)


@dataclasses.dataclass(frozen=True)
class WorkerOptions:
    result_topic: str
    concurrency: int
    invisible_seconds: int
    max_attempts: int
    retry_backoff_seconds: float
    shutdown_grace_seconds: float
    result_ttl_seconds: int
    task_timeout_seconds: float = 0.0
    max_lost_attempts: int = 3
    #: Slots beyond `concurrency` only high-priority tasks take (with a priority consumer).
    priority_slots: int = 1
    #: After the drain, how long to wait for a receive the stop interrupted, to hand its
    #: messages back at once: as long as the receive's long poll (WORKER_AWAIT_SECONDS + 1 s
    #: in `agentprod worker`). A receive cut short still pops what arrives for the gone worker
    #: and hides it for `invisible_seconds` — the first task after a scale to zero waited 30 s.
    receive_wait_seconds: float = 2.0


#: `Delivery.lane` of the high-priority topic's messages.
HIGH_LANE = "high"


class _Lanes:
    """The handler's consumer: acks and invisibility changes go back to the consumer that
    received the delivery (the request topic's, or the high-priority topic's)."""

    def __init__(self, normal: Consumer, high: Consumer | None) -> None:
        self._normal = normal
        self._high = high

    def _of(self, delivery: Delivery) -> Consumer:
        if delivery.lane == HIGH_LANE and self._high is not None:
            return self._high
        return self._normal

    async def start(self) -> None:
        await self._normal.start()

    async def receive(self, *, max_messages: int, invisible_seconds: int) -> list[Delivery]:
        return await self._normal.receive(
            max_messages=max_messages, invisible_seconds=invisible_seconds
        )

    async def ack(self, delivery: Delivery) -> None:
        await self._of(delivery).ack(delivery)

    async def change_invisible(self, delivery: Delivery, *, seconds: float) -> None:
        await self._of(delivery).change_invisible(delivery, seconds=seconds)

    async def close(self) -> None:
        await self._normal.close()


class Worker:
    """Consumes one request topic for one consumer group."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        publisher: Publisher,
        store: TaskStore,
        agents: AgentPool,
        options: WorkerOptions,
        clock: Callable[[], float] = time.time,  # wall clock: leases are compared across hosts
        callbacks: CallbackSender | None = None,
        priority_consumer: Consumer | None = None,
    ) -> None:
        self._consumer = consumer
        self._priority_consumer = priority_consumer
        self._lanes = _Lanes(consumer, priority_consumer)
        self._options = options
        self._callbacks = callbacks
        self._handler = handling.Handler(
            consumer=self._lanes,
            publisher=publisher,
            store=store,
            agents=agents,
            options=handling.HandlingOptions(
                result_topic=options.result_topic,
                invisible_seconds=options.invisible_seconds,
                max_attempts=options.max_attempts,
                retry_backoff_seconds=options.retry_backoff_seconds,
                result_ttl_seconds=options.result_ttl_seconds,
                task_timeout_seconds=options.task_timeout_seconds,
                max_lost_attempts=options.max_lost_attempts,
            ),
            clock=clock,
            worker_id=f"{socket.gethostname()}/{uuid.uuid4().hex[:12]}",  # the pod's name
            on_store_down=self._store_down,
            callbacks=callbacks,
        )
        self._store = store
        self._store_up = asyncio.Event()
        self._store_up.set()
        self._pending_receives: set[asyncio.Future[list[Delivery]]] = set()
        self._priority_wake = asyncio.Event()
        self._asked_normal = 0  # what the pending normal receive may still bring
        self._running: set[asyncio.Task[None]] = set()
        self._holding = 0  # deliveries holding a slot (not yet past their store step)
        self._backlog = False  # the last receive came back full
        self._last_brought = 0  # messages the last normal receive brought
        self._slot_freed = asyncio.Event()
        self.last_heartbeat = time.monotonic()
        self.stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def _free(self) -> int:
        """Slots free for normal tasks: deliveries past their store step hold none, but at
        most `concurrency` of them (publishing, acking) may be pending at once."""
        return decisions.normal_room(
            concurrency=self._options.concurrency,
            holding=self._holding,
            running=len(self._running),
        )

    def _priority_free(self) -> int:
        """High-priority messages to ask for (from the free slots and the reserve)."""
        return decisions.priority_room(
            concurrency=self._options.concurrency,
            reserve=self._options.priority_slots,
            holding=self._holding,
            running=len(self._running),
            asked_normal=self._asked_normal,
        )

    @property
    def store_available(self) -> bool:
        """False from a failed Redis call until a ping answers again (readiness reports it)."""
        return self._store_up.is_set()

    def _store_down(self, error: Exception) -> None:
        if self._store_up.is_set():
            log.warning("task store unavailable; receiving paused until it answers: %s", error)
            self._store_up.clear()
            metrics.STORE_UP.set(0)

    async def _wait_for_store(self, stop: asyncio.Event) -> None:
        """Ping Redis with a backoff until it answers (or stop); receives stay paused."""
        attempt = 0
        while not stop.is_set():
            self.last_heartbeat = time.monotonic()  # paused on purpose: still alive
            try:
                await self._store.ping()
            except StoreUnavailable:
                delay = STORE_PING_BACKOFF_SECONDS[
                    min(attempt, len(STORE_PING_BACKOFF_SECONDS) - 1)
                ]
                attempt += 1
                await _first_of(asyncio.sleep(delay), stop.wait())
                continue
            log.info("task store answers again; receiving resumed")
            self._store_up.set()
            metrics.STORE_UP.set(1)
            return

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and process until `stop` is set, then drain; returns when done."""
        listening = asyncio.create_task(self._handler.cancels.listen(self._store))
        try:
            await self._receive_until(stop)
        finally:
            listening.cancel()
            await asyncio.wait({listening}, timeout=2)
            if self._callbacks is not None:
                await self._callbacks.close(grace_seconds=self._options.shutdown_grace_seconds)

    async def _receive_until(self, stop: asyncio.Event) -> None:
        priority = (
            asyncio.create_task(self._receive_priority(self._priority_consumer, stop))
            if self._priority_consumer is not None
            else None
        )
        try:
            await self._receive_normal(stop)
        finally:
            if priority is not None:
                stop.set()
                await asyncio.wait({priority})
        await self._drain()
        await self._settle_pending_receives()

    async def _receive_priority(self, consumer: Consumer, stop: asyncio.Event) -> None:
        """The high-priority loop: a receive pending on its topic whenever there is room."""
        failures = 0
        started = False
        while not stop.is_set():
            if not self._store_up.is_set():  # the normal loop pings; wait for it to answer
                await _first_of(self._store_up.wait(), stop.wait())
                continue
            room = self._priority_free()
            if room <= 0:
                await _first_of(self._priority_wake.wait(), stop.wait())
                self._priority_wake.clear()
                continue
            try:
                if not started:
                    await consumer.start()
                    started = True
                deliveries = await self._receive(consumer, min(room, MAX_BATCH), stop)
                failures = 0
            except BrokerUnavailable as error:
                failures += 1
                await _back_off(failures, "high-priority receive", error, stop)
                continue
            for delivery in deliveries:
                delivery.lane = HIGH_LANE
            if stop.is_set():
                await self._give_back(deliveries)
                break
            for delivery in deliveries:  # they fit: see decisions.priority_room
                self._spawn(delivery)

    async def _receive_normal(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self.last_heartbeat = time.monotonic()
            if not self._store_up.is_set():
                await self._wait_for_store(stop)
                continue
            free = self._free()
            if free <= 0:
                await _first_of(self._slot_freed.wait(), stop.wait())
                self._slot_freed.clear()
                continue
            wanted = decisions.receive_fill(concurrency=self._options.concurrency, cap=MAX_BATCH)
            if decisions.linger_before_receive(
                free=free, wanted=wanted, running=self._holding, backlog=self._backlog
            ):
                await _first_of(self._slots_free(wanted), asyncio.sleep(RECEIVE_LINGER_SECONDS))
                free = self._free()
            if free <= 0:  # high-priority tasks took the slots meanwhile
                continue
            asked = decisions.receive_ask(
                free=free,
                cap=MAX_BATCH,
                priority_lane=self._priority_consumer is not None,
                last_brought=self._last_brought,
            )
            self._asked_normal = asked
            try:
                deliveries = await self._receive(self._consumer, asked, stop)
                self._backlog = len(deliveries) >= asked
                self._last_brought = len(deliveries)
                failures = 0
            except BrokerUnavailable as error:
                failures += 1
                await _back_off(failures, "receive", error, stop)
                continue
            finally:
                self._asked_normal = 0
                self._priority_wake.set()  # what it held back is free for high work again
            if stop.is_set():
                await self._give_back(deliveries)
                break
            for delivery in deliveries:  # they fit: see decisions.priority_room
                self._spawn(delivery)

    async def _slots_free(self, wanted: int) -> None:
        """Return once `wanted` slots are free."""
        while self._free() < wanted:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    async def _receive(
        self, consumer: Consumer, max_messages: int, stop: asyncio.Event
    ) -> list[Delivery]:
        """Receive, but let a stop interrupt the wait.

        On stop the pending long-poll is not waited out before the drain: the drain's grace
        starts at once and whatever the receive still brings is handed back when it returns
        (`_settle_pending_receives`), so SIGKILL never lands mid-drain because of it.
        """
        lane = HIGH_LANE if consumer is self._priority_consumer else "normal"
        began = time.monotonic()
        receiving = asyncio.ensure_future(
            consumer.receive(
                max_messages=max_messages, invisible_seconds=self._options.invisible_seconds
            )
        )
        await _first_of(asyncio.shield(receiving), stop.wait())
        if not receiving.done():
            self._pending_receives.add(receiving)
            return []
        deliveries = await receiving
        metrics.RECEIVES.labels(lane=lane).observe(time.monotonic() - began)
        metrics.RECEIVED.labels(lane=lane).inc(len(deliveries))
        return deliveries

    async def _settle_pending_receives(self) -> None:
        """Hand back what receives interrupted by the stop still returned (bounded wait)."""
        pending, self._pending_receives = self._pending_receives, set()
        if not pending:
            return
        done, late = await asyncio.wait(pending, timeout=self._options.receive_wait_seconds)
        for receiving in late:
            receiving.cancel()  # its messages reappear after their invisible time
        for receiving in done:
            if receiving.exception() is None:
                await self._give_back(receiving.result())

    def _spawn(self, delivery: Delivery) -> None:
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._holding -= 1
                self._slot_freed.set()
                self._priority_wake.set()

        self._holding += 1
        task = asyncio.create_task(self._handler.handle(delivery, release))
        self._running.add(task)
        metrics.IN_FLIGHT.set(len(self._running))

        def done(finished: asyncio.Task[None]) -> None:
            self._running.discard(finished)
            metrics.IN_FLIGHT.set(len(self._running))
            release()
            self._slot_freed.set()  # a pending tail may have been what kept slots closed
            self._priority_wake.set()

        task.add_done_callback(done)

    async def _give_back(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            with contextlib.suppress(BrokerUnavailable):
                await self._lanes.change_invisible(delivery, seconds=0)

    async def _drain(self) -> None:
        self.stopping = True
        if not self._running:
            return
        log.info("draining %d in-flight task(s)", len(self._running))
        _, pending = await asyncio.wait(
            set(self._running), timeout=self._options.shutdown_grace_seconds
        )
        for task in pending:
            task.cancel()
        if pending:
            log.warning("grace period over: handed %d task(s) back to the broker", len(pending))
            await asyncio.wait(pending, timeout=5)


async def _first_of(*awaitables: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if task.done():
                if not task.cancelled():
                    task.exception()  # the caller awaits the original; mark this one seen
            else:
                task.cancel()


async def _back_off(failures: int, what: str, error: Exception, stop: asyncio.Event) -> None:
    """After the `failures`-th failed receive in a row: wait its back-off (or until stop)."""
    delay = RECEIVE_BACKOFF_SECONDS[min(failures - 1, len(RECEIVE_BACKOFF_SECONDS) - 1)]
    log.warning("%s failed (retrying in %.1fs): %s", what, delay, error)
    await _first_of(asyncio.sleep(delay), stop.wait())
