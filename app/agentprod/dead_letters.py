"""Dead letters end visibly: a small consumer of `%DLQ%<group>` in every worker process.

RocketMQ moves a message to the group's dead-letter topic once it ran out of deliveries
(MQ_MAX_RETRIES + 1) without an ack — a task whose every claim failed, or whose worker could
not settle it. Its record would stay `queued` or `running` until it expires. This loop reads
those messages with its own group (`keys.dead_letter_group`), marks each task `failed` with the
reason, indexes it for `agentprod dlq list|show|redrive`, publishes its failed result and acks.
A task that had ended already is only acked; one a worker still holds a live lease on is looked
at again later; a record Redis lost is recreated from the message first.

The topic exists only from the first dead letter, so until then receives fail and the loop
waits `IDLE_SECONDS` between tries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from pydantic import ValidationError

from agentprod import metrics
from agentprod.broker.base import BrokerUnavailable, Consumer, Delivery, Outgoing, Publisher
from agentprod.models import TaskMessage
from agentprod.store import StoreUnavailable, TaskStore
from agentprod.webhooks import CallbackSender

log = logging.getLogger(__name__)

IDLE_SECONDS = 15.0
BUSY_RETRY_SECONDS = 30.0
BATCH = 16
INVISIBLE_SECONDS = 30


def reason_for(*, max_attempts: int) -> str:
    return f"exhausted {max_attempts} deliveries without an outcome (dead-lettered)"


class DeadLetterSettler:
    def __init__(
        self,
        *,
        consumer: Consumer,
        publisher: Publisher,
        store: TaskStore,
        result_topic: str,
        max_attempts: int,
        result_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        callbacks: CallbackSender | None = None,
    ) -> None:
        self._callbacks = callbacks  # the worker's: a dead-lettered task's webhook too
        self._consumer = consumer
        self._publisher = publisher
        self._store = store
        self._result_topic = result_topic
        self._reason = reason_for(max_attempts=max_attempts)
        self._ttl = result_ttl_seconds
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        started = False
        while not stop.is_set():
            try:
                if not started:
                    await self._start()
                    started = True
                deliveries = await self._receive(stop)
            except BrokerUnavailable as error:
                log.debug("dead-letter topic not readable yet: %s", error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_SECONDS)
                continue
            for delivery in deliveries:
                try:
                    await self.settle(delivery)
                except (StoreUnavailable, BrokerUnavailable) as error:
                    log.warning("dead letter %s not settled yet: %s", delivery.message_id, error)

    async def _receive(self, stop: asyncio.Event) -> list[Delivery]:
        """A receive a stop interrupts (what it still brings reappears after its invisible
        time, to be settled by another worker)."""
        receiving = asyncio.ensure_future(
            self._consumer.receive(max_messages=BATCH, invisible_seconds=INVISIBLE_SECONDS)
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not receiving.done():
            receiving.cancel()
            return []
        return receiving.result()

    async def _start(self) -> None:
        try:
            await self._consumer.start()
        except BrokerUnavailable:
            raise
        except Exception as error:  # the client's own errors, e.g. no route for the topic yet
            raise BrokerUnavailable(f"dead-letter consumer not started: {error}") from error

    async def settle(self, delivery: Delivery) -> None:
        try:
            message = TaskMessage.model_validate_json(delivery.body)
        except ValidationError:
            log.error("dropping undecodable dead letter %s", delivery.message_id)
            await self._consumer.ack(delivery)
            return
        now = self._clock()
        outcome = await self._store.settle_dead_letter(
            message.task_id, reason=self._reason, now=now, ttl_seconds=self._ttl
        )
        if outcome == "missing":
            await self._store.recreate(message.queued_record(created_at=now), ttl_seconds=self._ttl)
            outcome = await self._store.settle_dead_letter(
                message.task_id, reason=self._reason, now=now, ttl_seconds=self._ttl
            )
        if outcome == "busy":
            await self._consumer.change_invisible(delivery, seconds=BUSY_RETRY_SECONDS)
            return
        if outcome == "failed":
            log.warning("task %s failed: %s", message.task_id, self._reason)
            metrics.TASKS_FINISHED.labels(status="failed").inc()
            metrics.DEAD_LETTERS_SETTLED.inc()
            record = await self._store.get(message.task_id)
            if record is not None:
                result = record.result_message()
                await self._publisher.send(
                    Outgoing(
                        topic=self._result_topic,
                        body=result.encode(),
                        key=result.task_id,
                        tag=result.status.value,
                        properties={"result_id": result.result_id},
                    )
                )
                await self._store.mark_published(message.task_id)
                if record.callback_url and self._callbacks is not None:
                    self._callbacks.send(
                        task_id=result.task_id,
                        url=record.callback_url,
                        body=result.encode(),
                        delivery_id=result.result_id,
                    )
        await self._consumer.ack(delivery)
