"""The worker: receive task messages, claim, run the agent, store, publish, ack.

One loop per process receives in batches of at most the free concurrency slots; each delivery
is handled in its own asyncio task:

1. claim the task in Redis (atomic; a duplicate or late redelivery of a finished task never
   runs again — see `decisions.step_for`);
2. run the agent while a renewer extends the message's invisibility and the claim's lease;
3. on success store `done` + result, publish the result message, mark it published, then ack;
4. on an error, either release the task to `queued` and let the broker redeliver it after a
   backoff (no ack), or — on the last delivery or a permanent error — store `failed` and publish.

On stop (SIGTERM) it stops receiving, gives in-flight tasks `shutdown_grace_seconds` to finish,
then hands unfinished ones back to the broker (released claim, zero invisibility).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from agentprod import decisions, metrics
from agentprod.agents.base import AgentTask, PermanentAgentError
from agentprod.agents.registry import AgentPool
from agentprod.broker.base import BrokerUnavailable, Consumer, Delivery, Outgoing, Publisher
from agentprod.models import ResultMessage, TaskMessage, TaskStatus, from_epoch
from agentprod.store import TaskStore

log = logging.getLogger(__name__)

MAX_BATCH = 32
# With only a few slots free while tasks run, wait this long for more to free up: one fuller
# receive costs the broker proxy far less than a receive per freed slot.
RECEIVE_LINGER_SECONDS = 0.01
RECEIVE_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0)


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
    ) -> None:
        self._consumer = consumer
        self._publisher = publisher
        self._store = store
        self._agents = agents
        self._options = options
        self._clock = clock
        self._id = uuid.uuid4().hex[:12]
        self._running: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self.last_heartbeat = time.monotonic()
        self.stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def run(self, stop: asyncio.Event) -> None:
        """Receive and process until `stop` is set, then drain; returns when done."""
        failures = 0
        while not stop.is_set():
            self.last_heartbeat = time.monotonic()
            free = self._options.concurrency - len(self._running)
            if free <= 0:
                await _first_of(self._slot_freed.wait(), stop.wait())
                self._slot_freed.clear()
                continue
            wanted = decisions.receive_fill(concurrency=self._options.concurrency, cap=MAX_BATCH)
            if free < wanted and self._running:
                await _first_of(self._slots_free(wanted), asyncio.sleep(RECEIVE_LINGER_SECONDS))
                free = self._options.concurrency - len(self._running)
            try:
                deliveries = await self._receive(min(free, MAX_BATCH), stop)
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

    async def _slots_free(self, wanted: int) -> None:
        """Return once `wanted` slots are free."""
        while self._options.concurrency - len(self._running) < wanted:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    async def _receive(self, max_messages: int, stop: asyncio.Event) -> list[Delivery]:
        """Receive, but let a stop interrupt the wait; messages that still arrive go back."""
        receiving = asyncio.ensure_future(
            self._consumer.receive(
                max_messages=max_messages, invisible_seconds=self._options.invisible_seconds
            )
        )
        await _first_of(asyncio.shield(receiving), stop.wait())
        if not receiving.done():
            log.info("stop requested: waiting for the pending receive to return")
        return await receiving

    def _spawn(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self._handle(delivery))
        self._running.add(task)
        metrics.IN_FLIGHT.set(len(self._running))

        def done(finished: asyncio.Task[None]) -> None:
            self._running.discard(finished)
            metrics.IN_FLIGHT.set(len(self._running))
            self._slot_freed.set()

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

    async def _handle(self, delivery: Delivery) -> None:
        try:
            message = TaskMessage.model_validate_json(delivery.body)
        except ValidationError as error:
            log.error("dropping undecodable message %s: %s", delivery.message_id, error)
            metrics.DELIVERIES.labels(step="undecodable").inc()
            await self._ack(delivery)
            return
        try:
            await self._process(delivery, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Redis or the broker failed mid-way: no ack, so the message comes back later.
            log.exception("task %s: processing failed; left for redelivery", message.task_id)
            metrics.DELIVERIES.labels(step="error").inc()

    async def _process(self, delivery: Delivery, message: TaskMessage) -> None:
        owner = f"{self._id}/{uuid.uuid4().hex[:8]}"
        claim = await self._store.claim(
            message.task_id,
            owner=owner,
            now=self._clock(),
            lease_seconds=self._options.invisible_seconds,
        )
        step = decisions.step_for(claim)
        metrics.DELIVERIES.labels(step=step.value).inc()
        if step is decisions.Step.RUN:
            await self._run(delivery, message, owner=owner, attempt=claim.attempts)
        elif step is decisions.Step.PUBLISH_AND_ACK:
            await self._publish_stored(message.task_id)
            await self._ack(delivery)
        elif step is decisions.Step.DEFER:
            delay = decisions.defer_delay(
                lease_left_seconds=claim.lease_until - self._clock(),
                invisible_seconds=self._options.invisible_seconds,
            )
            await self._consumer.change_invisible(delivery, seconds=delay)
        else:  # ACK of a duplicate, or DROP of a message without a record
            if step is decisions.Step.DROP:
                log.warning("task %s has no record; dropping its message", message.task_id)
            await self._ack(delivery)

    async def _run(
        self, delivery: Delivery, message: TaskMessage, *, owner: str, attempt: int
    ) -> None:
        agent_task = AgentTask(
            task_id=message.task_id,
            user_id=message.user_id,
            content=message.content,
            metadata=message.metadata,
            attempt=attempt,
        )
        renewal_done = asyncio.Event()
        renewer = asyncio.create_task(self._renew(delivery, message.task_id, owner, renewal_done))
        started = time.monotonic()
        try:
            result = await self._call_agent(message.agent, agent_task)
        except asyncio.CancelledError:
            await _stop(renewer, renewal_done)
            await self._hand_back(delivery, message.task_id, owner)
            raise
        except Exception as error:
            await _stop(renewer, renewal_done)
            metrics.TASK_SECONDS.observe(time.monotonic() - started)
            await self._failed_attempt(delivery, message, owner=owner, attempt=attempt, error=error)
            return
        await _stop(renewer, renewal_done)
        metrics.TASK_SECONDS.observe(time.monotonic() - started)
        await self._settle(
            delivery,
            message,
            owner=owner,
            attempt=attempt,
            status=TaskStatus.DONE,
            result=result,
            error=None,
        )

    async def _call_agent(self, name: str | None, task: AgentTask) -> object:
        agent = self._agents.get(name)
        limit = self._options.task_timeout_seconds
        if limit > 0:
            return await asyncio.wait_for(agent.run(task), limit)
        return await agent.run(task)

    async def _failed_attempt(
        self,
        delivery: Delivery,
        message: TaskMessage,
        *,
        owner: str,
        attempt: int,
        error: Exception,
    ) -> None:
        text = f"{type(error).__name__}: {error}"
        verdict = decisions.after_failure(
            delivery_attempt=delivery.attempt,
            max_attempts=self._options.max_attempts,
            permanent=isinstance(error, PermanentAgentError),
        )
        if verdict is decisions.AfterFailure.FAIL:
            log.warning("task %s failed for good: %s", message.task_id, text)
            await self._settle(
                delivery,
                message,
                owner=owner,
                attempt=attempt,
                status=TaskStatus.FAILED,
                result=None,
                error=text,
            )
            return
        metrics.ATTEMPTS_FAILED.inc()
        delay = decisions.retry_delay(
            delivery_attempt=delivery.attempt, base_seconds=self._options.retry_backoff_seconds
        )
        log.info(
            "task %s attempt %d failed (%s); retry in %.1fs",
            message.task_id,
            delivery.attempt,
            text,
            delay,
        )
        await self._store.release(message.task_id, owner=owner, error=text)
        await self._consumer.change_invisible(delivery, seconds=delay)

    async def _settle(
        self,
        delivery: Delivery,
        message: TaskMessage,
        *,
        owner: str,
        attempt: int,
        status: TaskStatus,
        result: object,
        error: str | None,
    ) -> None:
        """Store the outcome, publish it, then ack — in that order, so nothing is lost."""
        now = self._clock()
        stored = await self._store.finish(
            message.task_id,
            owner=owner,
            status=status,
            result=result,
            error=error,
            now=now,
            ttl_seconds=self._options.result_ttl_seconds,
        )
        if stored:
            metrics.TASKS_FINISHED.labels(status=status.value).inc()
            # Built from what this worker just stored: no read-back on the hot path.
            await self._publish(
                ResultMessage(
                    task_id=message.task_id,
                    user_id=message.user_id,
                    status=status,
                    result=result,
                    error=error,
                    attempts=attempt,
                    finished_at=from_epoch(now),
                )
            )
        else:
            log.warning(
                "task %s: lease lost to another worker; its outcome stands", message.task_id
            )
        await self._ack(delivery)

    async def _publish_stored(self, task_id: str) -> None:
        """Publish the result of a task finished earlier whose message never went out."""
        record = await self._store.get(task_id)
        if record is not None and not record.result_published:
            await self._publish(record.result_message())

    async def _publish(self, outgoing: ResultMessage) -> None:
        task_id = outgoing.task_id
        await self._publisher.send(
            Outgoing(
                topic=self._options.result_topic,
                body=outgoing.encode(),
                key=task_id,
                tag=outgoing.status.value,
            )
        )
        await self._store.mark_published(task_id)

    async def _ack(self, delivery: Delivery) -> None:
        try:
            await self._consumer.ack(delivery)
        except BrokerUnavailable as error:
            # The message comes back; the finished record makes that redelivery a no-op.
            log.warning("ack of %s failed: %s", delivery.message_id, error)

    async def _hand_back(self, delivery: Delivery, task_id: str, owner: str) -> None:
        with contextlib.suppress(Exception):
            await self._store.release(task_id, owner=owner, error="worker stopped mid-task")
            await self._consumer.change_invisible(delivery, seconds=0)

    async def _renew(
        self, delivery: Delivery, task_id: str, owner: str, done: asyncio.Event
    ) -> None:
        every = decisions.renew_every(self._options.invisible_seconds)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every)
            if done.is_set():
                return
            try:
                await self._consumer.change_invisible(
                    delivery, seconds=self._options.invisible_seconds
                )
                await self._store.renew(
                    task_id,
                    owner=owner,
                    now=self._clock(),
                    lease_seconds=self._options.invisible_seconds,
                )
            except Exception as error:
                log.warning("task %s: renewal failed: %s", task_id, error)


async def _stop(renewer: asyncio.Task[None], done: asyncio.Event) -> None:
    """Stop the renewer between calls, so no renewal races the ack."""
    done.set()
    await asyncio.shield(renewer)


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
