"""One delivery, from claim to settlement: claim → run the agent → store → publish → ack.

The worker's loop (`worker.py`) hands each received message to `Handler.handle` in its own
asyncio task. Every branch of what happens is decided by the pure functions of `decisions`:

1. claim the task in Redis (atomic; a duplicate or late redelivery of a finished task never
   runs again — see `decisions.step_for`);
2. run the agent while a renewer extends the message's invisibility and the claim's lease;
3. on success store `done` + result, publish the result message, mark it published, then ack
   (the worker's slot is released as soon as the outcome is stored: publish and ack go on
   without holding it, see `Attempt.release`);
4. on an error, either release the task to `queued` and let the broker redeliver it after a
   backoff (no ack), or — on the last delivery or a permanent error — store `failed` and publish;
5. on a cancel (announced on Redis pub/sub, `CancelWatch`; the lease renewal is the backstop)
   cancel the agent's coroutine — an in-flight model call is abandoned — and store `cancelled`;
6. with a `callback_url`, hand the published result to the webhook sender (`webhooks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable

from pydantic import ValidationError

from agentprod import decisions, logs, metrics, tracing
from agentprod.agents import registry
from agentprod.agents.base import AgentError, AgentTask, PermanentAgentError, RetryLater
from agentprod.agents.registry import AgentPool
from agentprod.broker.base import BrokerUnavailable, Consumer, Delivery, Outgoing, Publisher
from agentprod.models import (
    Claim,
    ClaimOutcome,
    ResultMessage,
    TaskMessage,
    TaskStatus,
    from_epoch,
)
from agentprod.progress import Progress
from agentprod.store import StoreUnavailable, TaskStore
from agentprod.webhooks import CallbackSender

log = logging.getLogger(__name__)

#: How long a delivery handed back during a Redis outage stays hidden: the loop pauses its
#: receives meanwhile, so this only spaces out the message's next delivery.
STORE_DOWN_HIDE_SECONDS = 5.0
#: How long a cancelled agent gets to unwind (its `finally` blocks) before the task is settled.
CANCEL_UNWIND_SECONDS = 2.0
CANCELLED_ERROR = "cancelled by request"
LISTEN_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


class CancelWatch:
    """The cancels announced for tasks this worker handles: `watch` before the claim, so an
    announcement that comes any time after it sets the returned event."""

    def __init__(self) -> None:
        self._events: dict[str, list[asyncio.Event]] = {}

    def watch(self, task_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._events.setdefault(task_id, []).append(event)
        return event

    def unwatch(self, task_id: str, event: asyncio.Event) -> None:
        events = self._events.get(task_id, [])
        if event in events:
            events.remove(event)
        if not events:
            self._events.pop(task_id, None)

    def notify(self, task_id: str) -> None:
        for event in self._events.get(task_id, ()):
            event.set()

    async def listen(self, store: TaskStore) -> None:
        """Follow the announcements until cancelled; re-subscribe after a Redis outage."""
        failures = 0
        while True:
            try:
                async for task_id in store.cancellations():
                    failures = 0
                    self.notify(task_id)
            except StoreUnavailable as error:
                delay = LISTEN_BACKOFF_SECONDS[min(failures, len(LISTEN_BACKOFF_SECONDS) - 1)]
                failures += 1
                log.warning("cancel announcements lost (again in %.1fs): %s", delay, error)
                await asyncio.sleep(delay)


@dataclasses.dataclass(frozen=True)
class HandlingOptions:
    """The part of the worker's options one delivery needs."""

    result_topic: str
    invisible_seconds: int
    max_attempts: int
    retry_backoff_seconds: float
    result_ttl_seconds: int
    task_timeout_seconds: float = 0.0
    max_lost_attempts: int = 3


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One claimed run of a task: its delivery, its message, the lease owner and run number."""

    delivery: Delivery
    message: TaskMessage
    owner: str
    number: int  # 1 on the first run, +1 per claim (the record's attempts)
    #: Frees the worker's concurrency slot; called once the outcome is stored, so the result's
    #: publish and the ack (broker round trips that need no agent) do not hold a slot.
    release: Callable[[], None] = lambda: None
    cancelled: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def task_id(self) -> str:
        return self.message.task_id


class Handler:
    """Handles deliveries for one worker; safe to run for many deliveries at once."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        publisher: Publisher,
        store: TaskStore,
        agents: AgentPool,
        options: HandlingOptions,
        clock: Callable[[], float],
        worker_id: str,
        on_store_down: Callable[[StoreUnavailable], None] = lambda _: None,
        cancels: CancelWatch | None = None,
        callbacks: CallbackSender | None = None,
    ) -> None:
        self.cancels = cancels or CancelWatch()
        self._callbacks = callbacks
        self._consumer = consumer
        self._publisher = publisher
        self._store = store
        self._agents = agents
        self._options = options
        self._clock = clock
        self._worker_id = worker_id
        self._on_store_down = on_store_down

    async def handle(self, delivery: Delivery, release: Callable[[], None] = lambda: None) -> None:
        """Handle one delivery; never raises but for cancellation (one message never kills the
        loop: what failed mid-way is left unacked and comes back). `release` is called when the
        delivery no longer needs its slot (the outcome is stored); the caller also frees the
        slot when this returns, so calling it is an early release, never the only one."""
        try:
            message = TaskMessage.model_validate_json(delivery.body)
        except ValidationError as error:
            log.error("dropping undecodable message %s: %s", delivery.message_id, error)
            metrics.DELIVERIES.labels(step="undecodable").inc()
            await self._ack(delivery)
            return
        try:
            with (
                logs.task_scope(message.task_id),
                tracing.consumer_span(
                    delivery.properties, message_id=delivery.message_id, attempt=delivery.attempt
                ),
            ):
                tracing.tag_task(message.task_id)
                await self._process(delivery, message, release)
        except asyncio.CancelledError:
            raise
        except StoreUnavailable as error:
            # Redis is down: tell the loop (it stops receiving until Redis answers) and hand
            # the message back at once rather than burn its deliveries on failing claims.
            log.warning("task %s: task store unavailable; handed back", message.task_id)
            metrics.DELIVERIES.labels(step="store_down").inc()
            self._on_store_down(error)
            with contextlib.suppress(BrokerUnavailable):
                await self._consumer.change_invisible(delivery, seconds=STORE_DOWN_HIDE_SECONDS)
        except Exception:
            # Redis or the broker failed mid-way: no ack, so the message comes back later.
            log.exception("task %s: processing failed; left for redelivery", message.task_id)
            metrics.DELIVERIES.labels(step="error").inc()

    async def _process(
        self, delivery: Delivery, message: TaskMessage, release: Callable[[], None]
    ) -> None:
        cancelled = self.cancels.watch(message.task_id)
        try:
            await self._process_watched(delivery, message, release, cancelled)
        finally:
            self.cancels.unwatch(message.task_id, cancelled)

    async def _process_watched(
        self,
        delivery: Delivery,
        message: TaskMessage,
        release: Callable[[], None],
        cancelled: asyncio.Event,
    ) -> None:
        owner = f"{self._worker_id}/{uuid.uuid4().hex[:8]}"
        claim = await self._claim(message, owner)
        step = decisions.step_for(claim)
        if step is decisions.Step.RECREATE:
            await self._recreate(message)
            claim = await self._claim(message, owner)
            step = decisions.step_for(claim)
        if claim.outcome is ClaimOutcome.ABANDONED:
            log.warning("task %s failed: its worker was lost too many times", message.task_id)
            metrics.TASKS_FINISHED.labels(status="failed").inc()
        metrics.DELIVERIES.labels(step=step.value).inc()
        if step is decisions.Step.RUN:
            await self._run(Attempt(delivery, message, owner, claim.attempts, release, cancelled))
        elif step is decisions.Step.PUBLISH_AND_ACK:
            await self._publish_stored(message.task_id)
            await self._ack(delivery)
        elif step is decisions.Step.DEFER:
            delay = decisions.defer_delay(
                lease_left_seconds=claim.lease_until - self._clock(),
                invisible_seconds=self._options.invisible_seconds,
            )
            await self._consumer.change_invisible(delivery, seconds=delay)
        else:  # ACK of a duplicate, or DROP of a message whose submission was refused
            if step is decisions.Step.DROP:
                log.info("task %s was refused at submission; dropping its message", message.task_id)
            await self._ack(delivery)

    async def _claim(self, message: TaskMessage, owner: str) -> Claim:
        with tracing.span("claim"):
            return await self._claim_once(message, owner)

    async def _claim_once(self, message: TaskMessage, owner: str) -> Claim:
        return await self._store.claim(
            message.task_id,
            owner=owner,
            now=self._clock(),
            lease_seconds=self._options.invisible_seconds,
            max_lost=decisions.max_lost_attempts(
                configured=self._options.max_lost_attempts,
                max_attempts=self._options.max_attempts,
            ),
            result_ttl_seconds=self._options.result_ttl_seconds,
        )

    async def _recreate(self, message: TaskMessage) -> None:
        """Write back the record Redis lost, from what the message carries; loudly."""
        log.warning(
            "task %s: its record is gone from Redis (lost data?); recreated from the message",
            message.task_id,
        )
        metrics.RECORDS_RECREATED.inc()
        await self._store.recreate(
            message.queued_record(created_at=self._clock()),
            ttl_seconds=self._options.result_ttl_seconds,
        )

    async def _run(self, attempt: Attempt) -> None:
        message = attempt.message
        agent_task = AgentTask(
            task_id=message.task_id,
            user_id=message.user_id,
            content=message.content,
            metadata=message.metadata,
            attempt=attempt.number,
            tenant=message.tenant,
            progress=self._progress(message.task_id),
        )
        renewal_done = asyncio.Event()
        renewer = asyncio.create_task(self._renew(attempt, renewal_done))
        started = asyncio.get_running_loop().time()
        running = asyncio.ensure_future(
            self._call_agent(message.agent, agent_task, message.deadline_at)
        )
        stopper = asyncio.ensure_future(attempt.cancelled.wait())
        try:
            await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the worker is stopping: hand the task back
            running.cancel()
            stopper.cancel()
            await _stop(renewer, renewal_done)
            await self._hand_back(attempt)
            raise
        stopper.cancel()
        if not running.done():  # a cancel was requested: stop the agent where it is
            await self._cancel_run(attempt, running)
            await _stop(renewer, renewal_done)
            metrics.TASK_SECONDS.observe(asyncio.get_running_loop().time() - started)
            await self._settle(
                attempt, status=TaskStatus.CANCELLED, result=None, error=CANCELLED_ERROR
            )
            return
        await _stop(renewer, renewal_done)
        metrics.TASK_SECONDS.observe(asyncio.get_running_loop().time() - started)
        try:
            result = running.result()
        except asyncio.CancelledError:  # the agent's own code cancelled it: a failed attempt
            await self._failed(attempt, AgentError("the agent's run was cancelled"))
            return
        except Exception as error:
            await self._failed(attempt, error)
            return
        await self._settle(attempt, status=TaskStatus.DONE, result=result, error=None)

    async def _cancel_run(self, attempt: Attempt, running: asyncio.Future[object]) -> None:
        running.cancel()
        _, late = await asyncio.wait({running}, timeout=CANCEL_UNWIND_SECONDS)
        if late:
            log.warning(
                "task %s: its agent ignored the cancel for %.0fs; settled cancelled anyway",
                attempt.task_id,
                CANCEL_UNWIND_SECONDS,
            )
        elif not running.cancelled() and running.exception() is not None:
            log.info("task %s: agent ended with %r on cancel", attempt.task_id, running.exception())
        log.info("task %s cancelled while running", attempt.task_id)

    def _progress(self, task_id: str) -> Progress:
        async def report(kind: str, data: dict[str, object]) -> None:
            try:
                await self._store.emit(
                    task_id,
                    kind=kind,
                    data=data,
                    at=self._clock(),
                    ttl_seconds=self._options.result_ttl_seconds,
                )
            except StoreUnavailable as error:
                log.warning("task %s: progress event lost: %s", task_id, error)

        return report

    async def _call_agent(
        self, name: str | None, task: AgentTask, deadline_at: float | None
    ) -> object:
        try:
            params = self._agents.params(name, task.metadata)
        except ValidationError as error:  # the API refuses these; an old or forged message
            raise PermanentAgentError(
                f"invalid parameters: {registry.describe(error, prefix='metadata.')}"
            ) from None
        except registry.DisabledAgent as error:
            raise PermanentAgentError(str(error)) from None
        task = dataclasses.replace(task, params=params)
        try:
            agent = self._agents.get(name)
        except ValidationError as error:
            raise PermanentAgentError(
                f"invalid AGENT_CONFIG for agent {self._agents.name_of(name)}: "
                f"{registry.describe(error)}"
            ) from None
        budget = decisions.run_budget(
            timeout_seconds=self._options.task_timeout_seconds,
            deadline_left_seconds=None if deadline_at is None else deadline_at - self._clock(),
        )
        with tracing.span(
            f"agent {name or 'default'}", attributes={"agentprod.attempt": task.attempt}
        ):
            if budget.seconds is None:
                return await agent.run(task)
            if budget.seconds <= 0:
                raise PermanentAgentError("deadline exceeded before the task could run")
            try:
                return await asyncio.wait_for(agent.run(task), budget.seconds)
            except TimeoutError:
                if budget.by_deadline:  # retrying cannot help: the task's time is up
                    raise PermanentAgentError("deadline exceeded while running") from None
                raise

    async def _failed(self, attempt: Attempt, error: Exception) -> None:
        text = f"{type(error).__name__}: {error}"
        delivery = attempt.delivery
        verdict = decisions.after_failure(
            delivery_attempt=delivery.attempt,
            max_attempts=self._options.max_attempts,
            permanent=isinstance(error, PermanentAgentError),
        )
        if verdict is decisions.AfterFailure.FAIL:
            log.warning("task %s failed for good: %s", attempt.task_id, text)
            await self._settle(attempt, status=TaskStatus.FAILED, result=None, error=text)
            return
        metrics.ATTEMPTS_FAILED.inc()
        if isinstance(error, RetryLater):  # the provider said how long: hide it that long
            delay = decisions.retry_after_delay(after_seconds=error.after_seconds)
        else:
            delay = decisions.retry_delay(
                delivery_attempt=delivery.attempt,
                base_seconds=self._options.retry_backoff_seconds,
            )
        deadline_at = attempt.message.deadline_at
        if deadline_at is not None and self._clock() + delay >= deadline_at:
            text = f"deadline exceeded before a retry could run; last error: {text}"
            log.warning("task %s failed: %s", attempt.task_id, text)
            await self._settle(attempt, status=TaskStatus.FAILED, result=None, error=text)
            return
        log.info(
            "task %s attempt %d failed (%s); retry in %.1fs",
            attempt.task_id,
            delivery.attempt,
            text,
            delay,
        )
        released = await self._store.release(
            attempt.task_id,
            owner=attempt.owner,
            error=text,
            now=self._clock(),
            ttl_seconds=self._options.result_ttl_seconds,
        )
        if released == 2:  # cancelled while this attempt ran: it ends here, no retry
            await self._publish_stored(attempt.task_id)
            await self._ack(delivery)
            return
        await self._consumer.change_invisible(delivery, seconds=delay)

    async def _settle(
        self, attempt: Attempt, *, status: TaskStatus, result: object, error: str | None
    ) -> None:
        """Store the outcome, publish it, then ack — in that order, so nothing is lost."""
        now = self._clock()
        message = attempt.message
        with tracing.span("store result", attributes={"agentprod.status": status.value}):
            stored = await self._store.finish(
                message.task_id,
                owner=attempt.owner,
                status=status,
                result=result,
                error=error,
                now=now,
                ttl_seconds=self._options.result_ttl_seconds,
            )
        attempt.release()
        if status is TaskStatus.FAILED:
            tracing.failed(error or "failed")
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
                    attempts=attempt.number,
                    finished_at=from_epoch(now),
                ),
                callback_url=message.callback_url,
            )
        else:
            log.warning(
                "task %s: lease lost to another worker; its outcome stands", message.task_id
            )
        await self._ack(attempt.delivery)

    async def _publish_stored(self, task_id: str) -> None:
        """Publish the result of a task finished earlier whose message never went out."""
        record = await self._store.get(task_id)
        if record is not None and not record.result_published:
            await self._publish(record.result_message(), callback_url=record.callback_url)

    async def _publish(self, outgoing: ResultMessage, *, callback_url: str | None) -> None:
        task_id = outgoing.task_id
        body = outgoing.encode()
        await self._publisher.send(  # the publisher adds the trace context
            Outgoing(
                topic=self._options.result_topic,
                body=body,
                key=task_id,
                tag=outgoing.status.value,
                properties={"result_id": outgoing.result_id},
            )
        )
        await self._store.mark_published(task_id)
        if callback_url and self._callbacks is not None:
            self._callbacks.send(
                task_id=task_id, url=callback_url, body=body, delivery_id=outgoing.result_id
            )

    async def _ack(self, delivery: Delivery) -> None:
        try:
            await self._consumer.ack(delivery)
        except BrokerUnavailable as error:
            # The message comes back; the finished record makes that redelivery a no-op.
            log.warning("ack of %s failed: %s", delivery.message_id, error)

    async def _hand_back(self, attempt: Attempt) -> None:
        with contextlib.suppress(Exception):
            await self._store.release(
                attempt.task_id,
                owner=attempt.owner,
                error="worker stopped mid-task",
                now=self._clock(),
                ttl_seconds=self._options.result_ttl_seconds,
            )
            await self._consumer.change_invisible(attempt.delivery, seconds=0)

    async def _renew(self, attempt: Attempt, done: asyncio.Event) -> None:
        every = decisions.renew_every(self._options.invisible_seconds)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every)
            if done.is_set():
                return
            try:
                await self._consumer.change_invisible(
                    attempt.delivery, seconds=self._options.invisible_seconds
                )
                renewed = await self._store.renew(
                    attempt.task_id,
                    owner=attempt.owner,
                    now=self._clock(),
                    lease_seconds=self._options.invisible_seconds,
                )
                if renewed == 2:  # a cancel whose announcement this worker missed
                    attempt.cancelled.set()
            except Exception as error:  # the next renewal tries again; the lease has slack
                log.warning("task %s: renewal failed: %s", attempt.task_id, error)


async def _stop(renewer: asyncio.Task[None], done: asyncio.Event) -> None:
    """Stop the renewer between calls, so no renewal races the ack."""
    done.set()
    await asyncio.shield(renewer)
