"""POST /tasks and GET /tasks/{task_id}: accept a task at once (202) and report its state.

A task is accepted only once both its record (Redis) and its message (broker) are written:
the record is created unsent first, the message sent, then the record confirmed. If the send
fails the unsent record is discarded and the client gets 503 with Retry-After, so a 202 always
means "will run" and nothing is ever left `queued` without its message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse

from agentprod import metrics
from agentprod.agents import registry
from agentprod.api import errors, identity
from agentprod.api.services import Services
from agentprod.broker.base import BrokerUnavailable, Outgoing
from agentprod.models import TaskAccepted, TaskRecord, TaskRequest, TaskStatus, TaskView
from agentprod.settings import Settings
from agentprod.store import StoreUnavailable, TaskStore

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 10.0
IDEMPOTENCY_KEY_MAX = 255


def router(services: Services) -> APIRouter:
    routes = APIRouter()
    settings = services.settings

    @routes.post(
        "/tasks",
        status_code=202,
        response_model=TaskAccepted,
        responses={413: {}, 422: {}, 503: {}},
    )
    async def submit_task(
        body: TaskRequest,
        who: Annotated[identity.Caller, Depends(identity.caller)],
        idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
    ) -> TaskAccepted | JSONResponse:
        """Accept a task; it runs asynchronously. Poll GET /tasks/{task_id} for the outcome."""
        del who
        _check_request(body, settings)
        return await _accept(services, body, idempotency_key)

    @routes.get("/tasks/{task_id}", response_model=TaskView, responses={404: {}, 503: {}})
    async def get_task(
        task_id: str, who: Annotated[identity.Caller, Depends(identity.caller)]
    ) -> TaskView:
        """The task's state; 404 when unknown (or expired after its result TTL)."""
        del who
        record = await services.store.get(task_id)
        if record is None:
            raise errors.ClientError(404, "task_id", f"no task {task_id}", "not_found")
        return record.view()

    return routes


def _check_request(body: TaskRequest, settings: Settings) -> None:
    size = len(body.content.encode())
    if size > settings.max_content_bytes:
        raise errors.ClientError(
            413,
            "content",
            f"content is {size} bytes; the limit is {settings.max_content_bytes}",
            "too_large",
        )
    if body.agent is not None and not registry.is_registered(body.agent):
        known = ", ".join(registry.names())
        raise errors.ClientError(
            422, "agent", f"unknown agent {body.agent!r}; known: {known}", "agent"
        )


async def _accept(
    services: Services, body: TaskRequest, idempotency_key: str | None
) -> TaskAccepted | JSONResponse:
    settings = services.settings
    record = TaskRecord(
        task_id=str(uuid.uuid4()),
        user_id=body.user_id,
        content=body.content,
        agent=body.agent,
        metadata=body.metadata,
        status=TaskStatus.QUEUED,
        created_at=time.time(),
    )
    idempotency = None
    if idempotency_key:
        fingerprint = hashlib.sha256(
            orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:32]
        idempotency = (idempotency_key, fingerprint, settings.idempotency_ttl_seconds)
    created = await services.store.create(
        record, ttl_seconds=settings.task_pending_ttl_seconds, idempotency=idempotency
    )
    if not created.created:
        return await _replay(
            services, created.task_id, created.fingerprint_matches, created.confirmed
        )
    message = record.message()
    try:
        await asyncio.wait_for(
            services.publisher.send(
                Outgoing(
                    topic=settings.mq_topic_request,
                    body=message.encode(),
                    key=record.task_id,
                    tag=record.agent or "default",
                )
            ),
            SEND_TIMEOUT_SECONDS,
        )
    except (BrokerUnavailable, TimeoutError) as error:
        await _discard(services.store, record, idempotency_key or "")
        metrics.SUBMIT_REFUSED.labels(dependency="rocketmq").inc()
        raise errors.Unavailable("rocketmq", f"could not queue the task: {error}") from error
    try:
        await services.store.confirm_sent(record.task_id)
    except StoreUnavailable as error:  # the message is out: the worker's claim confirms it
        log.warning("task %s sent but not confirmed: %s", record.task_id, error)
    metrics.TASKS_SUBMITTED.inc()
    return TaskAccepted(task_id=record.task_id, status=TaskStatus.QUEUED)


async def _replay(
    services: Services, task_id: str, fingerprint_matches: bool, confirmed: bool
) -> TaskAccepted:
    if not fingerprint_matches:
        raise errors.ClientError(
            422,
            "Idempotency-Key",
            "this Idempotency-Key was used with a different request body",
            "idempotency_mismatch",
        )
    if not confirmed:
        raise errors.ClientError(
            409,
            "Idempotency-Key",
            "a request with this Idempotency-Key is still being processed; retry shortly",
            "idempotency_in_progress",
        )
    earlier = await services.store.get(task_id)
    status = earlier.status if earlier else TaskStatus.QUEUED
    return TaskAccepted(task_id=task_id, status=status)


async def _discard(store: TaskStore, record: TaskRecord, idempotency_key: str) -> None:
    try:
        await store.discard_unsent(
            record.task_id, user_id=record.user_id, idempotency_key=idempotency_key
        )
    except StoreUnavailable as error:  # stays unsent: invisible to GET, dropped, expires
        log.warning("could not discard unsent task %s: %s", record.task_id, error)
