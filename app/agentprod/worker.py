"""The worker's loop: receive task messages in batches and hand each to `handling.Handler`.

One loop per process receives in batches of at most the free concurrency slots; each delivery
is handled in its own asyncio task (claim → run → store → publish → ack, see `handling`). A
delivery frees its slot once its outcome is stored: the result's publish and the ack finish
without holding it (at most `concurrency` such tails at once).

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
#: After the drain, how long to wait for a receive the stop interrupted, to hand its messages
#: back at once instead of after their invisible time.
PENDING_RECEIVE_WAIT_SECONDS = 2.0


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
    ) -> None:
        self._consumer = consumer
        self._options = options
        self._callbacks = callbacks
        self._handler = handling.Handler(
            consumer=consumer,
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
        self._pending_receive: asyncio.Future[list[Delivery]] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._holding = 0  # deliveries holding a slot (not yet past their store step)
        self._backlog = False  # the last receive came back full
        self._slot_freed = asyncio.Event()
        self.last_heartbeat = time.monotonic()
        self.stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def _free(self) -> int:
        """Slots free: deliveries past their store step hold none, but at most `concurrency`
        of them (publishing, acking) may be pending at once."""
        concurrency = self._options.concurrency
        return min(concurrency - self._holding, 2 * concurrency - len(self._running))

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
            try:
                asked = min(free, MAX_BATCH)
                deliveries = await self._receive(asked, stop)
                self._backlog = len(deliveries) >= asked
                failures = 0
            except BrokerUnavailable as error:
                delay = RECEIVE_BACKOFF_SECONDS[min(failures, len(RECEIVE_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.warning("receive failed (retrying in %.1fs): %s", delay, error)
                await _first_of(asyncio.sleep(delay), stop.wait())
                continue
            if stop.is_set():
                await self._give_back(deliveries)
                break
            for delivery in deliveries:
                self._spawn(delivery)
        await self._drain()
        await self._settle_pending_receive()

    async def _slots_free(self, wanted: int) -> None:
        """Return once `wanted` slots are free."""
        while self._free() < wanted:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    async def _receive(self, max_messages: int, stop: asyncio.Event) -> list[Delivery]:
        """Receive, but let a stop interrupt the wait.

        On stop the pending long-poll is not waited out before the drain: the drain's grace
        starts at once and whatever the receive still brings is handed back when it returns
        (`_settle_pending_receive`), so SIGKILL never lands mid-drain because of it.
        """
        receiving = asyncio.ensure_future(
            self._consumer.receive(
                max_messages=max_messages, invisible_seconds=self._options.invisible_seconds
            )
        )
        await _first_of(asyncio.shield(receiving), stop.wait())
        if not receiving.done():
            self._pending_receive = receiving
            return []
        return await receiving

    async def _settle_pending_receive(self) -> None:
        """Hand back what a receive interrupted by the stop still returned (bounded wait)."""
        receiving, self._pending_receive = self._pending_receive, None
        if receiving is None:
            return
        done, _ = await asyncio.wait({receiving}, timeout=PENDING_RECEIVE_WAIT_SECONDS)
        if not done:
            receiving.cancel()  # its messages reappear after their invisible time
            return
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

        self._holding += 1
        task = asyncio.create_task(self._handler.handle(delivery, release))
        self._running.add(task)
        metrics.IN_FLIGHT.set(len(self._running))

        def done(finished: asyncio.Task[None]) -> None:
            self._running.discard(finished)
            metrics.IN_FLIGHT.set(len(self._running))
            release()
            self._slot_freed.set()  # a pending tail may have been what kept slots closed

        task.add_done_callback(done)

    async def _give_back(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            with contextlib.suppress(BrokerUnavailable):
                await self._consumer.change_invisible(delivery, seconds=0)

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
